"""Data Docs that open offline: the CSS, JS and fonts GX's pages link from CDNs, copied into the site from
installed packages, and every link rewritten to the local copy.

    make_offline(site)             # after GX built the site; returns the remote loads left (none with GX 1.24.1)
    remote_loads(site)             # what a browser would still fetch from the network: [(file, url)]

GX 1.24.1's templates load Bootstrap 4.3.1, jQuery 3.7.1, Popper 1.12.9, bootstrap-table 1.19.1 (and its
filter-control extension), bootstrap-datepicker 1.9.0, a dark Bootstrap theme, Font Awesome 6.6.0 and
Vega 5 / Vega-Lite 5 / Vega-Embed 6 from five CDNs, and GX's logo from GX's own bucket. Without network the
index lists nothing (bootstrap-table draws it) and no page is styled. The copies come from (versions close
to the CDN's, checked to render the same pages):

- the XStatic packages (PyPI): Bootstrap 4.5.3 (its `bootstrap.bundle` carries Popper, so Popper's own tag
  is removed), jQuery 3.7.1, Font Awesome 6.2.1 (CSS and webfonts), bootstrap-datepicker 1.4.0;
- django-js-lib-vega-embed (PyPI): Vega 5.33, Vega-Lite 5.23, Vega-Embed 6.29;
- `expectations/vendor/` (from the npm registry, no Python package carries them; see its README):
  bootstrap-table 1.19.1 with filter-control, @forevolve/bootstrap-dark 1.1.0;
- GX's logo: the copy GX itself puts in every site (`static/images/logo-long.png`).

Nothing is fetched at run time. Links in plain anchors (`<a href="https://greatexpectations.io">`) stay:
they are pages a reader may open, not resources the page loads.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

VENDOR_FOLDER = "static/vendor"
"""Where, inside a site, the copies go."""


@dataclass(frozen=True)
class Asset:
    """One file a page loads, as `package`'s resource `root/file`; copied to `static/vendor/<name>/<file>`.
    `companions` are files the asset itself loads by relative path (Font Awesome's webfonts), copied along."""

    name: str
    package: str
    root: str
    file: str
    companions: tuple[str, ...] = ()

    @property
    def site_path(self) -> str:
        return f"{VENDOR_FOLDER}/{self.name}/{self.file}"

    def files(self) -> list[tuple[Path, str]]:
        """(installed file, path inside the site) of the asset and its companions."""
        base = Path(str(resources.files(self.package).joinpath(self.root)))
        found = [(base / self.file, self.site_path)]
        for pattern in self.companions:
            matches = sorted(base.glob(pattern))
            if not matches:
                raise FileNotFoundError(f"{self.package} has no {self.root}/{pattern}")
            found += [(p, f"{VENDOR_FOLDER}/{self.name}/{p.relative_to(base).as_posix()}") for p in matches]
        return found


_BOOTSTRAP_CSS = Asset("bootstrap", "xstatic.pkg.bootstrap", "data", "css/bootstrap.min.css")
_BOOTSTRAP_JS = Asset("bootstrap", "xstatic.pkg.bootstrap", "data", "js/bootstrap.bundle.min.js")
_JQUERY = Asset("jquery", "xstatic.pkg.jquery", "data", "jquery.min.js")
_FONT_AWESOME = Asset(
    "font-awesome", "xstatic.pkg.font_awesome", "data", "css/all.min.css", ("webfonts/*.woff2", "webfonts/*.ttf")
)
_DATEPICKER_CSS = Asset("bootstrap-datepicker", "xstatic.pkg.bootstrap_datepicker", "data", "datepicker.css")
_DATEPICKER_JS = Asset("bootstrap-datepicker", "xstatic.pkg.bootstrap_datepicker", "data", "bootstrap-datepicker.js")
_VEGA = Asset("vega", "js_lib_vega_embed", "static/js_lib_vega_embed", "vega5.js")
_VEGA_LITE = Asset("vega", "js_lib_vega_embed", "static/js_lib_vega_embed", "vega-lite5.js")
_VEGA_EMBED = Asset("vega", "js_lib_vega_embed", "static/js_lib_vega_embed", "vega-embed6.js")
_TABLE_CSS = Asset("bootstrap-table", "expectations", "vendor/bootstrap-table", "bootstrap-table.min.css")
_TABLE_JS = Asset("bootstrap-table", "expectations", "vendor/bootstrap-table", "bootstrap-table.min.js")
_FILTER_CSS = Asset(
    "bootstrap-table", "expectations", "vendor/bootstrap-table", "bootstrap-table-filter-control.min.css"
)
_FILTER_JS = Asset("bootstrap-table", "expectations", "vendor/bootstrap-table", "bootstrap-table-filter-control.min.js")
_DARK = Asset("bootstrap-dark", "expectations", "vendor/bootstrap-dark", "bootstrap-prefers-dark.min.css")

GX_LOGO = "static/images/logo-long.png"
"""GX's logo as GX copies it into every site."""

_UNPKG_TABLE = "https://unpkg.com/bootstrap-table"
_CDNJS = "https://cdnjs.cloudflare.com/ajax/libs"
_GX_ASSETS = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com"

REPLACEMENTS: dict[str, Asset | str | None] = {
    # exact URLs of GX 1.24.1's templates (query strings aside): a GX upgrade that links anything else leaves
    # it remote, and tests/test_datadocs_offline.py fails until it is mapped here.
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": _BOOTSTRAP_CSS,
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": _BOOTSTRAP_JS,
    f"{_CDNJS}/popper.js/1.12.9/umd/popper.min.js": None,  # inside bootstrap.bundle
    "https://code.jquery.com/jquery-3.7.1.min.js": _JQUERY,
    f"{_CDNJS}/font-awesome/6.6.0/css/all.min.css": _FONT_AWESOME,
    f"{_CDNJS}/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": _DATEPICKER_CSS,
    f"{_CDNJS}/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": _DATEPICKER_JS,
    "https://cdn.jsdelivr.net/npm/vega@5": _VEGA,
    "https://cdn.jsdelivr.net/npm/vega-lite@5": _VEGA_LITE,
    "https://cdn.jsdelivr.net/npm/vega-embed@6": _VEGA_EMBED,
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": _DARK,
    f"{_UNPKG_TABLE}@1.19.1/dist/bootstrap-table.min.css": _TABLE_CSS,
    f"{_UNPKG_TABLE}@1.19.1/dist/bootstrap-table.min.js": _TABLE_JS,
    f"{_UNPKG_TABLE}@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js": _FILTER_JS,
    f"{_UNPKG_TABLE}@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css": _FILTER_CSS,
    f"{_UNPKG_TABLE}@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css": _FILTER_CSS,
    f"{_GX_ASSETS}/logo-long.png": GX_LOGO,
    f"{_GX_ASSETS}/full_logo_dark.png": GX_LOGO,  # the dark theme's logo: GX ships only the light one
}
"""CDN URL -> the local copy (an `Asset`, or a file GX already puts in the site), or None: drop the tag."""

ASSETS: tuple[Asset, ...] = tuple(dict.fromkeys(a for a in REPLACEMENTS.values() if isinstance(a, Asset)))

# A tag that loads something (`<a>` navigates, it does not load), with its URL attribute.
_LOADING_TAG = re.compile(
    r"<(?P<tag>script|link|img|iframe|source|embed|video|audio|object)\b[^>]*?"
    r"\b(?P<attr>src|href|data)\s*=\s*(?P<q>[\"'])(?P<url>[^\"']*)(?P=q)[^>]*>",
    re.IGNORECASE,
)
_SCRIPT_ELEMENT = re.compile(
    r"[ \t]*<script\b[^>]*?\bsrc\s*=\s*(?P<q>[\"'])(?P<url>[^\"']*)(?P=q)[^>]*>\s*</script>[ \t]*\n?", re.IGNORECASE
)
_CSS_URL = re.compile(
    r"""url\(\s*(?P<q>["']?)(?P<url>[^"')\s]+)(?P=q)\s*\)|@import\s+(?P<q2>["'])(?P<url2>[^"']+)(?P=q2)"""
)
_SRI = re.compile(r"\s+(?:integrity|crossorigin)\s*=\s*([\"'])[^\"']*\1", re.IGNORECASE)
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_GX_STATIC = re.compile(r"^(?:\./|(?:\.\./)+)(?P<path>static/.+)$")
_REMOTE = re.compile(r"^(?:https?:)?//", re.IGNORECASE)


def make_offline(site: Path) -> list[tuple[Path, str]]:
    """Copy `ASSETS` into `site/static/vendor/`, point every page and stylesheet of the site at them and drop
    the tags the copies make redundant; return `remote_loads(site)` afterwards (empty unless GX changed)."""
    for asset in ASSETS:
        for source, target in asset.files():
            destination = site / target
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)
    for page in site.rglob("*.html"):
        _rewrite(page, site, _rewrite_html)
    for sheet in site.rglob("*.css"):
        if VENDOR_FOLDER not in sheet.relative_to(site).as_posix():
            _rewrite(sheet, site, _rewrite_css)
    return remote_loads(site)


def remote_loads(site: Path) -> list[tuple[Path, str]]:
    """Every (file, URL) in the site's HTML and CSS that a browser would fetch from the network on opening
    it: src/href of script, link, img, iframe, source, embed, video, audio, object tags and CSS `url()` /
    `@import` (inline or in .css files; CSS comments aside). Plain anchors are not loads."""
    return [(path, url) for path, url in _loaded_urls(site) if _REMOTE.match(url)]


def local_references(site: Path) -> list[tuple[Path, Path]]:
    """Every (file, referenced file) for the relative URLs the same tags and CSS load."""
    return [
        (path, (path.parent / url.split("?")[0].split("#")[0]).resolve())
        for path, url in _loaded_urls(site)
        if url and not _REMOTE.match(url) and not url.startswith(("data:", "#", "mailto:", "javascript:"))
    ]


def _loaded_urls(site: Path) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    for path in sorted([*site.rglob("*.html"), *site.rglob("*.css")]):
        text = path.read_text(encoding="utf-8")
        urls = [m["url"] for m in _LOADING_TAG.finditer(text)] if path.suffix == ".html" else []
        found += [(path, url) for url in urls + _css_urls(text)]
    return found


def _css_urls(text: str) -> list[str]:
    text = _CSS_COMMENT.sub("", text)
    return [m["url"] or m["url2"] for m in _CSS_URL.finditer(text)]


def _rewrite(path: Path, site: Path, rewrite: Callable[[str, str], str]) -> None:
    """Rewrite `path` in place with `rewrite(text, relative URL of the site's root from path's folder)`."""
    text = path.read_text(encoding="utf-8")
    relative_root = Path(os.path.relpath(site, path.parent)).as_posix()
    new = rewrite(text, relative_root)
    if new != text:
        path.write_text(new, encoding="utf-8")


def _local(url: str, relative_root: str) -> str | None:
    """The relative URL of `url`'s local copy, "" to drop it, None if it is not one of ours."""
    key = url.split("?", 1)[0]
    if key not in REPLACEMENTS:
        return None
    target = REPLACEMENTS[key]
    if target is None:
        return ""
    site_path = target.site_path if isinstance(target, Asset) else target
    return f"{relative_root}/{site_path}"


def _rewrite_html(text: str, relative_root: str) -> str:
    def tag(match: re.Match[str]) -> str:
        local = _local(match["url"], relative_root)
        if local is None:
            gx_static = _GX_STATIC.match(match["url"])
            if gx_static is None:
                return match[0]
            # GX's own static files, at the page's real depth (its favicon link from validation pages
            # is one folder too shallow)
            local = f"{relative_root}/{gx_static['path']}"
        if local == "":
            return ""
        start, end = match.start("url") - match.start(), match.end("url") - match.start()
        return _SRI.sub("", match[0][:start] + local + match[0][end:])  # the copy is not the CDN's bytes

    def dropped_script(match: re.Match[str]) -> str:
        return "" if _local(match["url"], relative_root) == "" else match[0]

    text = _SCRIPT_ELEMENT.sub(dropped_script, text)
    text = _LOADING_TAG.sub(tag, text)
    return _rewrite_css(text, relative_root)


def _rewrite_css(text: str, relative_root: str) -> str:
    def url(match: re.Match[str]) -> str:
        original = match["url"] or match["url2"]
        local = _local(original, relative_root)
        if local is None:
            return match[0]
        return match[0].replace(original, local) if local else "none"  # a dropped image: no background

    return _CSS_URL.sub(url, text)
