"""Pictures of embeddings: a PNG scatter map and a self-contained HTML page.

matplotlib (``pip install 'latentcore[plot]'``) is imported only when a map is
drawn, and only through its object-oriented API with the Agg canvas: drawing a
map neither needs a display nor changes the pyplot backend of the caller.
Every file is written atomically (:func:`latentcore.io.atomic_write`): a
failed render leaves no file, or the previous one untouched.
"""

from __future__ import annotations

import html as _html
import os
from pathlib import Path
from typing import Any

import numpy as np

from .io import atomic_write

__all__ = ["scatter_map", "scatter_map_html", "IMAGE_FORMATS"]

#: Image types :func:`scatter_map` writes, by file extension (case-insensitive).
IMAGE_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}

#: Categorical labels with at most this many classes get a legend.
MAX_LEGEND_CLASSES = 30

# Above this many points a scatter of markers is slow and the markers are
# below a pixel anyway: datashader, when importable, bins them into pixels.
_LARGE = 200_000

_INSTALL_HINT = "drawing maps needs matplotlib: pip install 'latentcore[plot]'"
_PLAIN_COLOR = "#3b6ea8"  # points without labels
_MISSING_COLOR = "#b0b0b0"  # numeric labels that are NaN
_NUMERIC_CMAP = "viridis"
_MARGIN = 0.45  # inches around the map panel
_TITLE_ROOM = 0.75  # inches above it for one or two title lines
_COLORBAR_ROOM = 1.1  # inches to the right for a colour bar


def _matplotlib():
    """(Figure, FigureCanvasAgg, matplotlib), or ImportError with the install hint."""
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    return Figure, FigureCanvasAgg, matplotlib


def require_matplotlib() -> None:
    """Raises ImportError (naming ``pip install 'latentcore[plot]'``) unless
    matplotlib can be imported; lets a caller fail before a long computation."""
    _matplotlib()


# ------------------------------------------------------------------ inputs

def _checked_embedding(embedding: Any) -> np.ndarray:
    Y = np.asarray(embedding)
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.ndim != 2 or Y.shape[0] == 0 or Y.shape[1] == 0:
        raise ValueError(f"embedding must have shape (n_points, n_components), got {Y.shape}")
    if Y.dtype.kind not in "iuf":
        raise ValueError(f"embedding must be numeric, got dtype {Y.dtype}")
    Y = Y.astype(np.float64)
    if not np.all(np.isfinite(Y)):
        raise ValueError("embedding holds NaN or infinite coordinates")
    return Y


def _plane(Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, str | None]:
    """The two drawn coordinates and a note on what was done to get them."""
    n, c = Y.shape
    if c == 1:
        # Deterministic jitter: the same embedding gives the same picture.
        jitter = np.random.default_rng(0).uniform(-1.0, 1.0, n)
        return Y[:, 0], jitter, "1-D map: the vertical spread is random jitter"
    note = None if c == 2 else f"first 2 of {c} dimensions shown"
    return Y[:, 0], Y[:, 1], note


class _Labels:
    """Labels sorted into categories (codes and names) or numeric values."""

    def __init__(self, labels: Any, n: int):
        values = np.asarray(labels)
        if values.ndim == 2 and 1 in values.shape:
            values = values.ravel()
        if values.ndim != 1 or values.shape[0] != n:
            raise ValueError(f"labels must hold one value per point ({n}), got shape {values.shape}")
        self.categorical = True
        self.values = None
        if values.dtype.kind in "iuf":
            finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
            integral = finite.size == values.size and np.all(finite == np.round(finite))
            if not integral or np.unique(finite).size > MAX_LEGEND_CLASSES:
                self.categorical = False
                self.values = values.astype(np.float64)
                return
            values = values.astype(np.int64)
        elif values.dtype.kind != "b":
            values = values.astype(str)
        names, self.codes = np.unique(values, return_inverse=True)
        self.codes = self.codes.ravel()
        self.names = [str(name) for name in names.tolist()]

    @property
    def n_classes(self) -> int:
        return len(self.names) if self.categorical else 0

    @property
    def legend(self) -> bool:
        return self.categorical and self.n_classes <= MAX_LEGEND_CLASSES


def _category_colors(m: int) -> np.ndarray:
    """m distinguishable RGBA colours: tab10, tab20, then tab20/b/c, then
    the turbo colour map at golden-ratio steps."""
    _, _, matplotlib = _matplotlib()
    cmaps = matplotlib.colormaps
    if m <= 10:
        return cmaps["tab10"](np.arange(m))
    if m <= 20:
        return cmaps["tab20"](np.arange(m))
    if m <= 60:
        table = np.concatenate([cmaps[name](np.arange(20)) for name in ("tab20", "tab20b", "tab20c")])
        return table[:m]
    return cmaps["turbo"]((np.arange(m) * 0.618033988749895) % 1.0 * 0.9 + 0.05)


def _point_style(n: int, point_size: float | None) -> tuple[float, float]:
    """Marker area (points^2) and alpha: large, opaque dots for a few hundred
    points, fine translucent ones for hundreds of thousands."""
    size = float(np.clip(15_000.0 / n, 0.1, 30.0)) if point_size is None else float(point_size)
    if not (np.isfinite(size) and size > 0):
        raise ValueError(f"point_size must be positive, got {point_size!r}")
    alpha = float(np.clip(0.9 - 0.15 * np.log10(max(n, 1) / 1000.0), 0.25, 0.9))
    return size, alpha


def _limits(x: np.ndarray, y: np.ndarray, width: float, height: float,
            equal: bool) -> tuple[tuple[float, float], tuple[float, float]]:
    """Data limits with a 3% margin; with ``equal``, widened so that one
    unit is as long on both axes of a width x height panel."""
    def span(v):
        lo, hi = float(v.min()), float(v.max())
        if hi - lo < 1e-12 * max(1.0, abs(lo)):
            lo, hi = lo - 1.0, hi + 1.0
        pad = 0.03 * (hi - lo)
        return lo - pad, hi + pad

    (x0, x1), (y0, y1) = span(x), span(y)
    if equal:
        scale = max((x1 - x0) / width, (y1 - y0) / height)
        cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
        x0, x1 = cx - scale * width / 2.0, cx + scale * width / 2.0
        y0, y1 = cy - scale * height / 2.0, cy + scale * height / 2.0
    return (x0, x1), (y0, y1)


# ------------------------------------------------------------------ PNG

def scatter_map(embedding: Any, path: str | os.PathLike, *, labels: Any = None,
                title: str | None = None, point_size: float | None = None,
                html: bool = False, figsize: tuple[float, float] = (8.0, 8.0),
                dpi: int = 100) -> Path:
    """Draws an embedding as a scatter map and writes it as an image.

    Parameters
    ----------
    embedding : array of shape (n, c)
        The points. 2-D maps are drawn with equal scales on both axes;
        a 1-D map (c == 1) is drawn against a random jitter axis; for c >= 3
        the first two coordinates are drawn and the title says so.
    path : str or path-like
        The image to create or replace atomically: ``.png`` (also ``.svg``
        or ``.pdf``); its directory must exist.
    labels : array of shape (n,), optional
        Strings, booleans, or integers (and integral floats) with at most
        30 distinct values are categories: one colour each and a legend
        (above 30 classes: colours, no legend). Other numbers colour the
        points along a colour map with a colour bar; NaN is grey.
    title : str, optional
        Default: the number of points.
    point_size : float, optional
        Marker area in points^2; default: from 30 for a few hundred points
        down to 0.1 for 150,000 and more. Transparency likewise grows with n.
    html : bool, default False
        Also write :func:`scatter_map_html` of the same points beside the
        image, as ``path`` with the suffix ``.html``.
    figsize : (float, float), default (8, 8)
        Inches of the map panel (with its title). A legend widens the image
        by about 1.5 inches per legend column, a colour bar by 1.1 inches.
    dpi : int, default 100
        Pixels per inch: the default PNG is 800 x 800 pixels without legend.

    Returns
    -------
    pathlib.Path
        The image written.

    Notes
    -----
    Above 200,000 points the map is binned into pixels with datashader when
    it is installed (then ``point_size`` does not apply); otherwise
    matplotlib draws them all with tiny markers, which takes longer and
    says so in the title.

    Raises
    ------
    ImportError
        matplotlib is not installed (``pip install 'latentcore[plot]'``).
    ValueError
        Bad embedding, labels, point size or file type.
    FileNotFoundError
        The directory of ``path`` does not exist.
    """
    path = Path(path)
    image_format = IMAGE_FORMATS.get(path.suffix.lower())
    if image_format is None:
        raise ValueError(f"{path}: unknown image type {path.suffix or '(no extension)'!r}; "
                         f"expected one of {', '.join(IMAGE_FORMATS)}")
    Figure, FigureCanvasAgg, _ = _matplotlib()
    Y = _checked_embedding(embedding)
    n = Y.shape[0]
    lab = None if labels is None else _Labels(labels, n)
    size, alpha = _point_style(n, point_size)
    x, y, note = _plane(Y)

    legend_names = lab.names if lab is not None and lab.legend else []
    legend_columns = 0 if not legend_names else (1 if len(legend_names) <= 15 else 2)
    longest = max((len(name) for name in legend_names), default=0)
    legend_room = legend_columns * (0.55 + 0.075 * min(longest, 24))
    extra = legend_room if legend_columns else (
        _COLORBAR_ROOM if lab is not None and not lab.categorical else 0.0)
    width, height = float(figsize[0]), float(figsize[1])
    fig = Figure(figsize=(width + extra, height), dpi=dpi, facecolor="white")
    FigureCanvasAgg(fig)
    panel_w = width - 2 * _MARGIN
    panel_h = height - _MARGIN - _TITLE_ROOM
    if panel_w <= 0 or panel_h <= 0:
        raise ValueError(f"figsize {figsize} leaves no room for the map")
    fig_w = width + extra
    ax = fig.add_axes((_MARGIN / fig_w, _MARGIN / height, panel_w / fig_w, panel_h / height))
    xlim, ylim = _limits(x, y, panel_w, panel_h, equal=Y.shape[1] >= 2)

    large = n > _LARGE
    drawn = False
    if large:
        drawn = _draw_datashader(ax, x, y, lab, xlim, ylim, int(panel_w * dpi), int(panel_h * dpi))
        if not drawn:
            note = _join(note, "datashader not installed: drawn with tiny points")
    if not drawn:
        _draw_markers(ax, x, y, lab, size, alpha)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color("#cccccc")
    if Y.shape[1] == 1:
        ax.set_xlabel("dimension 1", fontsize=9)
        ax.set_ylabel("jitter", fontsize=9)

    if legend_columns:
        _add_legend(fig, lab, ax, legend_columns)
    elif lab is not None and not lab.categorical:
        _add_colorbar(fig, lab, fig_w, width, height)

    heading = title if title is not None else f"{n:,} points"
    fig.text(_MARGIN / fig_w, 1.0 - 0.12 / height, heading, ha="left", va="top", fontsize=13)
    if note:
        fig.text(_MARGIN / fig_w, 1.0 - 0.42 / height, f"({note})", ha="left", va="top",
                 fontsize=9, color="#555555")

    with atomic_write(path) as f:
        fig.savefig(f, format=image_format, dpi=dpi, facecolor="white")
    if html:
        scatter_map_html(Y, path.with_suffix(".html"), labels=labels, title=title)
    return path


def _join(a: str | None, b: str) -> str:
    return b if not a else f"{a}; {b}"


def _draw_order(n: int) -> np.ndarray:
    """A fixed random order, so that no class is always drawn on top."""
    return np.random.default_rng(n).permutation(n)


def _draw_markers(ax, x, y, lab: _Labels | None, size: float, alpha: float) -> None:
    n = x.shape[0]
    order = _draw_order(n)
    style = dict(s=size, alpha=alpha, linewidths=0, edgecolors="none", rasterized=True)
    if lab is None:
        ax.scatter(x[order], y[order], c=_PLAIN_COLOR, **style)
    elif lab.categorical:
        colors = _category_colors(lab.n_classes)
        ax.scatter(x[order], y[order], c=colors[lab.codes[order]], **style)
    else:
        missing = np.isnan(lab.values)
        if missing.any():
            ax.scatter(x[missing], y[missing], c=_MISSING_COLOR, **style)
        keep = order[~missing[order]]
        lo, hi = _numeric_range(lab)
        ax.scatter(x[keep], y[keep], c=lab.values[keep], cmap=_NUMERIC_CMAP, vmin=lo, vmax=hi,
                   **style)


def _numeric_range(lab: _Labels) -> tuple[float, float]:
    finite = lab.values[np.isfinite(lab.values)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def _draw_datashader(ax, x, y, lab: _Labels | None, xlim, ylim, width_px: int, height_px: int) -> bool:
    """Bins the points into the panel's pixels with datashader and shows the
    image; False (nothing drawn) when datashader or pandas is missing."""
    try:
        import datashader as ds
        import datashader.transfer_functions as tf
        import pandas as pd
    except ImportError:
        return False
    from matplotlib.colors import to_hex

    _, _, matplotlib = _matplotlib()
    canvas = ds.Canvas(plot_width=max(width_px, 1), plot_height=max(height_px, 1),
                       x_range=xlim, y_range=ylim)
    frame = pd.DataFrame({"x": x, "y": y})
    if lab is None:
        agg = canvas.points(frame, "x", "y", agg=ds.count())
        image = tf.shade(agg, cmap=["#9ab8d8", "#08306b"], how="eq_hist")
    elif lab.categorical:
        keys = [str(i) for i in range(lab.n_classes)]
        frame["label"] = pd.Categorical.from_codes(lab.codes, categories=keys)
        agg = canvas.points(frame, "x", "y", agg=ds.count_cat("label"))
        colors = [to_hex(c) for c in _category_colors(lab.n_classes)]
        image = tf.shade(agg, color_key=dict(zip(keys, colors)), how="eq_hist")
    else:
        frame["value"] = lab.values
        agg = canvas.points(frame, "x", "y", agg=ds.mean("value"))
        cmap = matplotlib.colormaps[_NUMERIC_CMAP]
        image = tf.shade(agg, cmap=[to_hex(c) for c in cmap(np.linspace(0, 1, 256))],
                         how="linear", span=_numeric_range(lab))
    rgba = np.asarray(image.to_pil())  # top row first: the highest y
    ax.imshow(rgba, extent=(*xlim, *ylim), origin="upper", interpolation="nearest", aspect="auto")
    return True


def _add_legend(fig, lab: _Labels, ax, columns: int) -> None:
    from matplotlib.lines import Line2D

    colors = _category_colors(lab.n_classes)
    handles = [Line2D([], [], linestyle="none", marker="o", markersize=7, markerfacecolor=color,
                      markeredgecolor="none", label=_shorten(name))
               for name, color in zip(lab.names, colors)]
    box = ax.get_position()
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(box.x1 + 0.01, box.y1),
               ncols=columns, frameon=False, fontsize=9, handletextpad=0.3, columnspacing=0.8,
               borderaxespad=0.0)


def _shorten(name: str, limit: int = 24) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "\u2026"


def _add_colorbar(fig, lab: _Labels, fig_w: float, width: float, height: float) -> None:
    cax = fig.add_axes(((width - _MARGIN + 0.25) / fig_w, _MARGIN / height,
                        0.22 / fig_w, (height - _MARGIN - _TITLE_ROOM) / height))
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    # Its own mappable: opaque, whatever the transparency of the points.
    _, _, matplotlib = _matplotlib()
    scale = ScalarMappable(norm=Normalize(*_numeric_range(lab)),
                           cmap=matplotlib.colormaps[_NUMERIC_CMAP])
    fig.colorbar(scale, cax=cax)
    cax.tick_params(labelsize=8)


# ------------------------------------------------------------------ HTML

def scatter_map_html(embedding: Any, path: str | os.PathLike, labels: Any = None, *,
                     title: str | None = None, max_points: int = 50_000) -> Path:
    """Writes the embedding as a self-contained HTML page: an inline SVG with
    one ``<circle>`` per point (hover shows its row number and label).

    Nothing is loaded from the network: no scripts, no fonts, no images.
    The page grows by about 100 bytes per point, so above ``max_points``
    points a random sample of that many (fixed seed) is drawn and the page
    says so. Colours, the 1-D jitter axis and the choice of the first two
    coordinates follow :func:`scatter_map`; categories with at most 30
    classes are listed in a legend, numeric labels get their range.

    Parameters
    ----------
    embedding : array of shape (n, c)
    path : str or path-like
        The page to create or replace atomically; its directory must exist.
    labels : array of shape (n,), optional
    title : str, optional
    max_points : int, default 50,000

    Returns
    -------
    pathlib.Path
        The page written.
    """
    _, _, matplotlib = _matplotlib()  # the colour maps
    from matplotlib.colors import to_hex

    path = Path(path)
    Y = _checked_embedding(embedding)
    n = Y.shape[0]
    lab = None if labels is None else _Labels(labels, n)
    if int(max_points) < 1:
        raise ValueError(f"max_points must be >= 1, got {max_points!r}")
    x, y, note = _plane(Y)
    rows = _draw_order(n)
    if n > max_points:
        rows = np.sort(np.random.default_rng(0).choice(n, int(max_points), replace=False))
        rows = rows[_draw_order(rows.size)]
        note = _join(note, f"showing a random sample of {int(max_points):,} of {n:,} points")

    if lab is None:
        colors = np.full(n, _PLAIN_COLOR)
    elif lab.categorical:
        palette = np.array([to_hex(c) for c in _category_colors(lab.n_classes)])
        colors = palette[lab.codes]
    else:
        lo, hi = _numeric_range(lab)
        cmap = matplotlib.colormaps[_NUMERIC_CMAP]
        scaled = np.clip((lab.values - lo) / (hi - lo), 0.0, 1.0)
        colors = np.array([to_hex(c) for c in cmap(np.nan_to_num(scaled))])
        colors[np.isnan(lab.values)] = _MISSING_COLOR

    side = 800
    xlim, ylim = _limits(x, y, side, side, equal=Y.shape[1] >= 2)
    px = (x - xlim[0]) / (xlim[1] - xlim[0]) * side
    py = (ylim[1] - y) / (ylim[1] - ylim[0]) * side  # SVG's y grows downwards
    radius = float(np.clip(80.0 / np.sqrt(rows.size), 1.2, 6.0))
    names = None if lab is None else (
        [lab.names[c] for c in lab.codes] if lab.categorical else [f"{v:g}" for v in lab.values])

    heading = title if title is not None else f"{n:,} points"
    parts = [
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        f"<title>{_html.escape(heading)}</title>\n",
        "<style>body{font-family:sans-serif;margin:1.5em;color:#222}"
        "svg{max-width:100%;height:auto;border:1px solid #ddd;background:#fff}"
        "p.note{color:#555;font-size:0.9em}ul.legend{list-style:none;padding:0;columns:3}"
        "ul.legend span{display:inline-block;width:0.8em;height:0.8em;margin-right:0.4em;"
        "border-radius:50%}</style>\n</head>\n<body>\n",
        f"<h1>{_html.escape(heading)}</h1>\n",
    ]
    if note:
        parts.append(f"<p class=\"note\">({_html.escape(note)})</p>\n")
    parts.append(f"<svg viewBox=\"0 0 {side} {side}\" width=\"{side}\" height=\"{side}\" "
                 f"role=\"img\">\n<g fill-opacity=\"0.8\">\n")
    for i in rows.tolist():
        tip = f"{i}" if names is None else f"{i}: {_html.escape(names[i])}"
        parts.append(f"<circle cx=\"{px[i]:.1f}\" cy=\"{py[i]:.1f}\" r=\"{radius:.2g}\" "
                     f"fill=\"{colors[i]}\"><title>{tip}</title></circle>\n")
    parts.append("</g>\n</svg>\n")
    if lab is not None and lab.legend:
        parts.append("<ul class=\"legend\">\n")
        for name, color in zip(lab.names, palette):
            parts.append(f"<li><span style=\"background:{color}\"></span>{_html.escape(name)}</li>\n")
        parts.append("</ul>\n")
    elif lab is not None and not lab.categorical:
        lo, hi = _numeric_range(lab)
        parts.append(f"<p class=\"note\">colour: label from {lo:g} (dark blue) "
                     f"to {hi:g} (yellow)</p>\n")
    parts.append("</body>\n</html>\n")
    with atomic_write(path) as f:
        f.write("".join(parts).encode("utf-8"))
    return path
