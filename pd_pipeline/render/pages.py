"""Card pages: a design (a folder of autoescaped Jinja2 templates and CSS) turned into the HTML the
renderer captures.

A design folder holds `battingcard.html` and `pitchingcard.html` (each renders one card from
`card`, see `view.card_view`), `card.css`, and any fonts, images or partial templates they use,
by relative URL. The renderer's own page (`shell.html`) holds the CSS, the shipped fonts and a
column of 1200x600 frames; the pool swaps each card's `body()` into a frame. Pages hold no script
and reach no network: the renderer serves the design's files and the shipped fonts from an
origin of its own, and the page's content security policy lets nothing else load or run.

`version` is the content hash of everything that shapes a card (the design's files, the shell,
the shipped fonts and the view's version): part of every card's input hash. A design may animate
tiers (`animations.toml`, see animation.py): `animation(card)` says how a card moves, if it does.
"""

import hashlib
import mimetypes
import re
from functools import cache
from pathlib import Path

import jinja2
from markupsafe import Markup

from pd_pipeline.model import Card, tier_of
from pd_pipeline.render import fonts
from pd_pipeline.render.animation import Animation, load_animations
from pd_pipeline.render.errors import DesignError
from pd_pipeline.render.validate import validate
from pd_pipeline.render.view import VIEW_VERSION, card_view

__all__ = ["DESIGN_DIR", "Animation", "CardPages", "DesignError", "pages_for"]

HERE = Path(__file__).parent
DESIGN_DIR = HERE / "design"  # the shipped design
SHELL = HERE / "shell.html"
REQUIRED = ("battingcard.html", "pitchingcard.html", "card.css")
# An address outside the page: a scheme, or a protocol-relative `//host`.
REMOTE = re.compile(r"""(?:\b[a-z][a-z0-9+.-]*:)?//[\w.-]+\.[a-z]{2,}[^\s"'()<>]*""", re.I)
COMMENTS = re.compile(r"/\*.*?\*/|<!--.*?-->|\{#.*?#\}", re.S)


class CardPages:
    """One card design, loaded and checked: its pages, its files, and its version."""

    def __init__(self, design_dir: Path = DESIGN_DIR) -> None:
        self.design_dir = Path(design_dir).resolve()
        _check_design(self.design_dir)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.design_dir),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,  # a design is loaded once: no file checks per card
        )
        # Every template compiled now, partials too: a syntax error stops the design at once.
        templates = {
            p.relative_to(self.design_dir).as_posix() for p in self.design_dir.rglob("*.html")
        }
        compiled = {name: self._compile(name) for name in sorted(templates)}
        self._templates = {name: compiled[name] for name in REQUIRED[:2]}
        self.animations = load_animations(self.design_dir)  # by tier; checked against the CSS
        self.version = _version(self.design_dir)
        shell = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
        self._shell = shell.from_string(SHELL.read_text())
        self._css = Markup((self.design_dir / "card.css").read_text())
        self._font_css = Markup(fonts.font_css())

    def shell(self, frames: int = 1) -> str:
        """The page cards are swapped into: `frames` empty frames, one above the other."""
        return self._page(frames, Markup(""))

    def body(self, card: Card) -> str:
        """The card's markup for a frame; raises CardDataError for data that makes no card."""
        validate(card)
        name = f"{card.card_type}.html"
        try:
            return self._templates[name].render(card=card_view(card))
        except jinja2.TemplateError as e:
            raise DesignError(f"{_where(e, name)}: {e}") from None

    def animation(self, card: Card) -> Animation | None:
        """How the card moves (by its tier), or None for a card that does not."""
        return self.animations.get(tier_of(card.variant))

    def document(self, card: Card) -> str:
        """A standalone page with the card in its one frame."""
        return self._page(1, Markup(self.body(card)))

    def resource(self, path: str) -> tuple[bytes, str] | None:
        """The bytes and content type the renderer serves at ORIGIN + `path`: a file of the
        design (`/design/...`) or a shipped font (`/fonts/...`); None for anything else."""
        for prefix, folder in (("/design/", self.design_dir), ("/fonts/", fonts.FONT_DIR)):
            if path.startswith(prefix):
                file = (folder / path[len(prefix) :]).resolve()
                if file.is_relative_to(folder) and file.is_file():
                    kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
                    return file.read_bytes(), kind
        return None

    def _page(self, frames: int, body: Markup) -> str:
        return self._shell.render(
            origin=fonts.ORIGIN, font_css=self._font_css, design_css=self._css,
            preload=fonts.preloaded(), frames=frames, body=body,
        )  # fmt: skip

    def _compile(self, name: str) -> jinja2.Template:
        try:
            return self.env.get_template(name)
        except jinja2.TemplateSyntaxError as e:
            file = Path(e.filename or name).name
            raise DesignError(f"{file}:{e.lineno}: {e.message}") from None


@cache
def pages_for(templates_dir: str | None = None) -> CardPages:
    """The card design: the shipped one, or the folder `templates_dir` (one per process:
    loading a design reads, checks and hashes its files)."""
    return CardPages(Path(templates_dir) if templates_dir else DESIGN_DIR)


def _check_design(folder: Path) -> None:
    if not folder.is_dir():
        raise DesignError(f"PD_TEMPLATES_DIR={folder} is not a folder")
    missing = [name for name in REQUIRED if not (folder / name).is_file()]
    if missing:
        raise DesignError(f"the design folder {folder} has no {', '.join(missing)}")
    for path in sorted(folder.rglob("*")):
        if path.suffix not in (".html", ".css"):
            continue
        text = COMMENTS.sub(lambda m: "\n" * m.group().count("\n"), path.read_text())
        for number, line in enumerate(text.splitlines(), 1):
            found = REMOTE.search(line)
            if found:
                raise DesignError(
                    f"{path.relative_to(folder)}:{number}: asks for {found.group()}, but card "
                    "pages reach no network: put the file in the design folder and use a "
                    "relative URL"
                )


def _where(error: jinja2.TemplateError, name: str) -> str:
    """`file:line` of the template frame a render error came from."""
    frame, traceback = None, error.__traceback__
    while traceback is not None:
        code = traceback.tb_frame.f_code
        if code.co_filename.endswith(".html"):
            frame = (Path(code.co_filename).name, traceback.tb_lineno)
        traceback = traceback.tb_next
    return f"{frame[0]}:{frame[1]}" if frame else name


def _version(design_dir: Path) -> str:
    digest = hashlib.sha256(VIEW_VERSION.encode() + b"\0")
    files = sorted(p for p in design_dir.rglob("*") if p.is_file())
    files += [SHELL, *(fonts.FONT_DIR / face.file for face in fonts.FONTS)]
    for path in files:
        name = path.relative_to(design_dir) if path.is_relative_to(design_dir) else path.name
        digest.update(str(name).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]
