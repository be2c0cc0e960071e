"""The names of each card type's image assets and their checks: the static image's are contract
(`battingcard_pngs`, `battingcard_image_urls`), the animated one's follow them."""

from dataclasses import dataclass

from pd_pipeline.model import CARD_TYPES, Image


@dataclass(frozen=True)
class ImageNames:
    card_type: str
    image: Image
    objects: str  # the asset of the images in the store: battingcard_pngs, battingcard_apngs
    urls: str  # the asset of the column pointing at them: *_image_urls, *_animated_urls
    checks: str  # the checks on the URL asset: *_image_checks, *_animated_checks


def names(card_type: str, image: Image) -> ImageNames:
    if image is Image.STATIC:
        return ImageNames(card_type, image, f"{card_type}_pngs", f"{card_type}_image_urls",
                          f"{card_type}_image_checks")  # fmt: skip
    return ImageNames(card_type, image, f"{card_type}_apngs", f"{card_type}_animated_urls",
                      f"{card_type}_animated_checks")  # fmt: skip


# Every card type's images, the static one first: the order their steps run in.
ALL = [names(card_type, image) for card_type in CARD_TYPES for image in Image]


def image_ops(config: dict) -> dict:
    """Run config giving `config` to every image step of a card_images_job run."""
    return {"ops": {n.objects: config for n in ALL}}
