"""The demo's S3 server: moto on 0.0.0.0:5000, with a bucket (DEMO_BUCKET, `cards`) that anyone
may read, so that the card URLs the pipeline writes back open in a browser. moto keeps objects in
memory: every request that changes something is recorded (MOTO_RECORDER_FILEPATH, in the
container's volume) and replayed at the next start, so a restart loses nothing."""

import json
import os
import signal
from pathlib import Path

import boto3
from moto.moto_api import recorder
from moto.server import ThreadedMotoServer

PORT = int(os.environ.get("PORT", "5000"))
BUCKET = os.environ.get("DEMO_BUCKET", "cards")
ENDPOINT = f"http://127.0.0.1:{PORT}"

# Blocked, so that sigwait gets them (as PID 1, unhandled signals would be dropped).
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
server = ThreadedMotoServer(ip_address="0.0.0.0", port=PORT)
server.start()
recording = Path(os.environ.get("MOTO_RECORDER_FILEPATH", "moto_recording"))
if recording.is_file() and recording.stat().st_size:
    recorder.replay_recording(target_host=ENDPOINT)
    print(f"replayed {recording}", flush=True)
s3 = boto3.client("s3", endpoint_url=ENDPOINT, region_name="us-east-1",
                  aws_access_key_id="demo", aws_secret_access_key="demo")  # fmt: skip
if BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
    s3.create_bucket(Bucket=BUCKET)
    public_read = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                       "Resource": f"arn:aws:s3:::{BUCKET}/*"}],
    }  # fmt: skip
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(public_read))
print(f"demo S3 server on port {PORT}, bucket {BUCKET}", flush=True)
signal.sigwait({signal.SIGTERM, signal.SIGINT})
server.stop()
