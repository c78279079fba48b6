"""latentcore.plot: scatter maps decoded back from their PNG files, the HTML
page, and the atomic write of both."""

import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from matplotlib.image import imread  # noqa: E402

from latentcore import plot  # noqa: E402
from latentcore.plot import scatter_map, scatter_map_html  # noqa: E402

# tab10's first four colours: the palette of up to ten classes.
TAB10 = np.array([[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40]]) / 255.0
SIDE = 800  # pixels of the default 8-inch, 100-dpi map panel
TITLE_BAND = 75  # pixels above the panel: title and note
PANEL_END = SIDE - 45  # the panel's right edge: 0.45 inch inside the 8-inch map; legend beyond


def files_in(directory):
    return sorted(p.name for p in directory.iterdir())


@pytest.fixture
def four_clusters(rng):
    """Four blobs: class 0 left, 1 right, 2 top, 3 bottom."""
    centres = np.array([[-10.0, 0.0], [10.0, 0.0], [0.0, 10.0], [0.0, -10.0]])
    labels = np.repeat(np.arange(4), 150)
    return centres[labels] + rng.standard_normal((labels.size, 2)), labels


def rgb(path):
    image = imread(path)
    assert image.dtype == np.float32 and image.ndim == 3
    return image[:, :, :3]


def distinct_colours(pixels):
    return np.unique((pixels.reshape(-1, 3) * 255).round().astype(np.int32), axis=0).shape[0]


def nearest_class(pixels, palette, min_saturation=0.25):
    """Each saturated pixel's nearest palette colour, -1 for white and grey."""
    flat = pixels.reshape(-1, 3)
    saturation = flat.max(axis=1) - flat.min(axis=1)
    nearest = np.linalg.norm(flat[:, None, :] - palette[None, :, :], axis=2).argmin(axis=1)
    return np.where(saturation >= min_saturation, nearest, -1).reshape(pixels.shape[:2])


def test_plain_map_is_a_picture_of_the_points(tmp_path, four_clusters):
    Y, _ = four_clusters
    path = scatter_map(Y, tmp_path / "map.png")
    assert path == tmp_path / "map.png" and files_in(tmp_path) == ["map.png"]
    pixels = rgb(path)
    assert pixels.shape == (SIDE, SIDE, 3)
    assert distinct_colours(pixels) >= 5  # white, frame, title, points and their antialiased edges
    inked = (pixels < 0.9).any(axis=2)[TITLE_BAND:].mean()
    assert 0.01 < inked < 0.5


def test_categorical_labels_get_colours_and_a_legend(tmp_path, four_clusters):
    Y, labels = four_clusters
    pixels = rgb(scatter_map(Y, tmp_path / "map.png", labels=labels, title="four blobs"))
    assert pixels.shape[0] == SIDE and pixels.shape[1] > SIDE  # widened for the legend
    classes = nearest_class(pixels, TAB10)
    panel, legend = classes[:, :PANEL_END], classes[:, PANEL_END + 2:]
    rows, cols = np.indices(panel.shape)
    centre = {}
    for c in range(4):
        assert (panel == c).sum() > 200, f"class {c} is hardly drawn"
        centre[c] = rows[panel == c].mean(), cols[panel == c].mean()
        assert (legend == c).sum() > 10, f"class {c} is missing from the legend"
    # Blob 0 lies left of blob 1 and blob 2 above blob 3 (smaller rows are higher).
    assert centre[0][1] < centre[1][1] - 200
    assert centre[2][0] < centre[3][0] - 200
    # Legend markers are drawn opaque: the exact palette colours are there.
    for colour in TAB10:
        assert (np.abs(pixels[:, PANEL_END + 2:] - colour).max(axis=2) < 0.01).any()


def test_string_labels_and_many_classes(tmp_path, rng):
    Y = rng.standard_normal((400, 2))
    names = np.array(["setosa", "versicolor", "virginica"])[np.arange(400) % 3]
    assert rgb(scatter_map(Y, tmp_path / "s.png", labels=names)).shape[1] > SIDE
    many = np.array([f"c{i % 40}" for i in range(400)])  # above 30 classes: colours, no legend
    pixels = rgb(scatter_map(Y, tmp_path / "m.png", labels=many))
    assert pixels.shape == (SIDE, SIDE, 3)
    assert distinct_colours(pixels) > 40
    # 40 distinct integers are taken for numbers: a colour bar
    assert rgb(scatter_map(Y, tmp_path / "i.png", labels=np.arange(400) % 40)).shape[1] > SIDE


def test_numeric_labels_get_a_colour_bar(tmp_path, four_clusters):
    Y, _ = four_clusters
    values = Y[:, 0] * 0.37 + 0.1  # continuous: not categories
    values[:5] = np.nan  # drawn grey
    pixels = rgb(scatter_map(Y, tmp_path / "map.png", labels=values))
    assert pixels.shape[0] == SIDE and pixels.shape[1] > SIDE
    bar = pixels[TITLE_BAND:, PANEL_END + 2:]
    assert distinct_colours(bar) > 50  # a gradient
    # viridis from dark purple to yellow runs along the bar
    assert (np.abs(bar - [0.267, 0.005, 0.329]).max(axis=2) < 0.05).any()
    assert (np.abs(bar - [0.993, 0.906, 0.144]).max(axis=2) < 0.05).any()


def test_one_dimensional_map_is_spread_by_jitter(tmp_path, rng):
    x = np.concatenate([rng.normal(-5, 1, 150), rng.normal(5, 1, 150)])
    pixels = rgb(scatter_map(x[:, None], tmp_path / "col.png"))
    assert pixels.shape == (SIDE, SIDE, 3)
    inked_rows = np.flatnonzero(((pixels[:, :, 2] - pixels[:, :, 0]) > 0.2).any(axis=1))
    assert inked_rows.max() - inked_rows.min() > SIDE / 2  # not a single line
    # A flat array is the same 1-D map.
    np.testing.assert_array_equal(rgb(scatter_map(x, tmp_path / "flat.png")), pixels)


def test_three_dimensional_map_draws_the_first_two_coordinates(tmp_path, four_clusters, rng):
    Y, labels = four_clusters
    Y3 = np.column_stack([Y, rng.standard_normal(Y.shape[0])])
    three = rgb(scatter_map(Y3, tmp_path / "three.png", labels=labels))
    two = rgb(scatter_map(Y, tmp_path / "two.png", labels=labels))
    assert three.shape == two.shape
    # The same map; only the title band differs, by the note on the dimensions.
    np.testing.assert_array_equal(three[TITLE_BAND:], two[TITLE_BAND:])
    assert not np.array_equal(three[:TITLE_BAND], two[:TITLE_BAND])


def test_point_size(tmp_path, four_clusters):
    Y, _ = four_clusters

    def inked(size):
        pixels = rgb(scatter_map(Y, tmp_path / f"s{size}.png", point_size=size))
        return (pixels < 0.9).any(axis=2)[TITLE_BAND:].sum()

    assert inked(60) > 2 * inked(4)
    with pytest.raises(ValueError, match="point_size must be positive"):
        scatter_map(Y, tmp_path / "bad.png", point_size=0)


def test_large_maps_fall_back_to_tiny_markers(tmp_path, rng, monkeypatch):
    monkeypatch.setattr(plot, "_LARGE", 1000)
    monkeypatch.setitem(sys.modules, "datashader", None)  # makes `import datashader` fail
    Y = rng.standard_normal((3000, 2))
    big = rgb(scatter_map(Y, tmp_path / "big.png", labels=np.arange(3000) % 3))
    assert big.shape[0] == SIDE and distinct_colours(big) > 10


def test_large_maps_with_datashader(tmp_path, rng, monkeypatch, four_clusters):
    pytest.importorskip("datashader")
    monkeypatch.setattr(plot, "_LARGE", 100)
    Y, labels = four_clusters
    pixels = rgb(scatter_map(Y, tmp_path / "ds.png", labels=labels))
    classes = nearest_class(pixels[:, :PANEL_END], TAB10)
    for c in range(4):
        assert (classes == c).sum() > 50
    assert rgb(scatter_map(Y, tmp_path / "num.png", labels=Y[:, 0] + 0.5)).shape[1] > SIDE


def test_html_page_has_one_circle_per_point(tmp_path, rng):
    Y = rng.standard_normal((123, 2))
    labels = np.array(["<b>bold</b>", "a & b", "plain"])[np.arange(123) % 3]
    path = scatter_map_html(Y, tmp_path / "map.html", labels=labels, title="Points <3")
    assert files_in(tmp_path) == ["map.html"]
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert text.count("<circle") == 123
    assert text.count("<li>") == 3  # the legend
    assert "&lt;b&gt;bold&lt;/b&gt;" in text and "<b>" not in text and "a &amp; b" in text
    assert "Points &lt;3" in text
    # Self-contained: nothing to fetch.
    for reference in ("http:", "https:", "<script", "src=", "<link", "@import"):
        assert reference not in text


def test_html_samples_large_embeddings(tmp_path, rng):
    Y = rng.standard_normal((500, 3))
    text = scatter_map_html(Y, tmp_path / "map.html", labels=rng.random(500),
                            max_points=80).read_text()
    assert text.count("<circle") == 80
    assert "random sample of 80 of 500 points" in text and "first 2 of 3 dimensions" in text


def test_html_beside_the_image(tmp_path, four_clusters):
    Y, labels = four_clusters
    scatter_map(Y, tmp_path / "map.png", labels=labels, html=True)
    assert files_in(tmp_path) == ["map.html", "map.png"]
    assert (tmp_path / "map.html").read_text().count("<circle") == Y.shape[0]


def test_other_image_types(tmp_path, four_clusters):
    Y, _ = four_clusters
    assert scatter_map(Y, tmp_path / "map.svg").read_text().lstrip().startswith("<?xml")
    assert scatter_map(Y, tmp_path / "map.pdf").read_bytes().startswith(b"%PDF")


def test_failed_render_leaves_no_file(tmp_path, four_clusters, monkeypatch):
    from matplotlib.figure import Figure

    def broken_savefig(self, f, **kwargs):
        f.write(b"\x89PNG half an image")
        raise RuntimeError("renderer died")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    Y, labels = four_clusters
    with pytest.raises(RuntimeError, match="renderer died"):
        scatter_map(Y, tmp_path / "map.png", labels=labels)
    assert files_in(tmp_path) == []  # neither the map nor a temporary file
    (tmp_path / "map.png").write_bytes(b"the previous map")
    with pytest.raises(RuntimeError):
        scatter_map(Y, tmp_path / "map.png", html=True)
    assert files_in(tmp_path) == ["map.png"]
    assert (tmp_path / "map.png").read_bytes() == b"the previous map"


@pytest.mark.parametrize("embedding, kwargs, name, problem", [
    (np.zeros((10, 2)), {"labels": np.arange(9)}, "m.png", "one value per point"),
    (np.full((10, 2), np.nan), {}, "m.png", "NaN or infinite"),
    (np.zeros((2, 3, 2)), {}, "m.png", "shape"),
    (np.zeros((0, 2)), {}, "m.png", "shape"),
    (np.array([["a", "b"]]), {}, "m.png", "numeric"),
    (np.zeros((10, 2)), {}, "m.jpg", "unknown image type '.jpg'"),
])
def test_bad_arguments(tmp_path, embedding, kwargs, name, problem):
    with pytest.raises(ValueError, match=problem):
        scatter_map(embedding, tmp_path / name, **kwargs)
    if name.endswith(".png"):
        with pytest.raises(ValueError, match=problem):
            scatter_map_html(embedding, tmp_path / "m.html", **kwargs)
    assert files_in(tmp_path) == []


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        scatter_map(np.zeros((5, 2)), tmp_path / "nowhere" / "m.png")


def test_without_matplotlib_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    for draw, name in ((scatter_map, "m.png"), (scatter_map_html, "m.html")):
        with pytest.raises(ImportError, match=r"pip install 'latentcore\[plot\]'"):
            draw(np.zeros((5, 2)), tmp_path / name)
    assert files_in(tmp_path) == []


def test_maps_are_written_through_symlinks(tmp_path, four_clusters):
    """A symbolic link named as the output stays a link; the file it points to is the map."""
    Y, labels = four_clusters
    (tmp_path / "maps").mkdir()
    (tmp_path / "map.png").symlink_to(tmp_path / "maps" / "latest.png")  # dangling until drawn
    (tmp_path / "map.html").symlink_to(tmp_path / "maps" / "latest.html")
    path = scatter_map(Y, tmp_path / "map.png", labels=labels, html=True)
    assert path == tmp_path / "map.png"
    assert (tmp_path / "map.png").is_symlink() and (tmp_path / "map.html").is_symlink()
    assert files_in(tmp_path / "maps") == ["latest.html", "latest.png"]
    assert rgb(tmp_path / "maps" / "latest.png").shape[0] == SIDE
    assert (tmp_path / "maps" / "latest.html").read_text().count("<circle") == Y.shape[0]
