"""`aiaprep.prep` returns what the `prep` pipeline writes: the same pixels and header as
the file `prep_files` (the batch of the command-line tool) writes for the same input and
options, and a WCS sunpy reads back the same."""

import numpy as np
import pytest

from astropy.io import fits
import sunpy.map

import aiaprep
from conftest import REAL, TABLE, full_frame_map, synthetic_map

# What only the file layout adds (not the image's metadata).
LAYOUT = {"SIMPLE", "EXTEND", "XTENSION", "PCOUNT", "GCOUNT", "CHECKSUM", "DATASUM"}


def file_cards(path):
    with fits.open(path, do_not_scale_image_data=True) as hdul:
        hdu = hdul[-1]
        h = hdu.header
        out = []
        for c in h.cards:
            if c.keyword in LAYOUT or (c.keyword.startswith("Z") and c.keyword[:5] in ("ZIMAG", "ZCMPT", "ZBITP", "ZNAXI", "ZTILE", "ZNAME", "ZVAL1", "ZVAL2", "ZQUAN", "ZDITH", "ZSIMP", "ZEXTE", "ZBLAN")):
                continue
            # cfitsio's own two lines (indented by two blanks) in every new file.
            if c.keyword == "COMMENT" and c.value.startswith(("  FITS (Flexible Image", "  and Astrophysics', volume 376")):
                continue
            out.append((c.keyword, c.value))
        return out


def map_cards(m):
    """The map's metadata as cards: keywords in order, then HISTORY and COMMENT lines (as
    sunpy keeps them: newline-joined strings)."""
    out = [(k.upper(), v) for k, v in m.meta.items() if k.upper() not in ("KEYCOMMENTS", "HISTORY", "COMMENT")]
    for k in ("HISTORY", "COMMENT"):
        if k.lower() in m.meta:
            out += [(k, line) for line in m.meta[k.lower()].split("\n")]
    return out


def sorted_commentary(cards):
    plain = [(k, v) for k, v in cards if k not in ("HISTORY", "COMMENT")]
    return plain + [(k, v) for k, v in cards if k == "HISTORY"] + [(k, v) for k, v in cards if k == "COMMENT"]


def assert_same_cards(ours, theirs):
    assert [k for k, _ in ours] == [k for k, _ in theirs]
    for (k, a), (_, b) in zip(ours, theirs):
        if isinstance(a, float) and isinstance(b, float):
            assert a == pytest.approx(b, rel=1e-15, abs=0), k
        else:
            assert a == b, k


def written(tmp_path, src, **kw):
    out = tmp_path / "out"
    rep = aiaprep.prep_files([src], out, progress=False, **kw)
    assert [r["status"] for r in rep] == ["done"], rep
    return rep[0]["output"]


@pytest.mark.parametrize(
    "opts",
    [
        dict(dtype="float32"),
        dict(dtype="float32", compress="rice"),
        dict(dtype="int16"),
        dict(dtype="int16", compress="rice", normalize_exposure=True),
        dict(dtype="float32", deconvolve=True, iterations=3),
        dict(dtype="int16", compress="rice", pointing_table=str(TABLE), full_frame=True),
    ],
)
def test_prep_equals_the_written_file(tmp_path, opts):
    opts = dict(opts)
    src = REAL
    if opts.pop("full_frame", False):
        # The pointing update needs a full-resolution frame.
        src = tmp_path / "full.fits"
        full_frame_map().save(src)
    path = written(tmp_path, src, backend="cpu", **opts)
    kw = {k: v for k, v in opts.items() if k != "compress"}
    m = aiaprep.prep(src, backend="cpu", **kw)
    with fits.open(path) as hdul:
        stored = fits.getdata(path, ext=len(hdul) - 1, do_not_scale_image_data=True)
    want_dtype = np.int16 if opts["dtype"] == "int16" else np.float32
    assert m.data.dtype == want_dtype
    np.testing.assert_array_equal(m.data, stored.astype(want_dtype))
    # Header: every card of the file (but the layout's), same values. Read by astropy: for
    # plain files in the same order; astropy reorders the storage cards of compressed
    # images, so there the keywords are compared as a mapping.
    ours = map_cards(m)
    theirs = sorted_commentary(file_cards(path))
    if opts.get("compress") == "rice":
        # (astropy also leaves BZERO = 0 out of a compressed image's header view.)
        assert {k: v for k, v in ours if (k, v) != ("BZERO", 0.0)} == dict(theirs)
        assert [c for c in ours if c[0] == "HISTORY"] == [c for c in theirs if c[0] == "HISTORY"]
    else:
        assert_same_cards(ours, theirs)
    # Read by cfitsio (its header view of the image HDU, compressed or not): same order.
    _data, _cards, records = aiaprep._native.read(str(path))
    cf = [(c.keyword, c.value) for c in fits.Header.fromstring(records).cards if c.keyword not in LAYOUT]
    cf = [c for c in cf if not (c[0] == "COMMENT" and c[1].startswith(("  FITS (Flexible", "  and Astrophysics'")))]
    assert_same_cards(ours, sorted_commentary(cf))
    # sunpy reads the same WCS from the map and from the file.
    f = sunpy.map.Map(path)
    for px in [(0, 0), (63.5, 63.5), (127, 5)]:
        assert m.wcs.pixel_to_world(*px).separation(f.wcs.pixel_to_world(*px)).to_value("arcsec") < 1e-9
    assert m.meta["lvl_num"] == f.meta["lvl_num"] == 1.5


def test_prep_of_a_map_equals_prep_of_its_file(tmp_path):
    m = synthetic_map(192, roll_deg=2.0, seed=9)
    p = tmp_path / "syn.fits"
    m.save(p)
    a = aiaprep.prep(m, backend="cpu")
    b = aiaprep.prep(p, backend="cpu")
    np.testing.assert_array_equal(a.data, b.data)


def test_stage_order_is_aiapys():
    """pointing → deconvolve → register → normalise, whatever the keyword order."""
    m = full_frame_map()
    one = aiaprep.prep(m, normalize_exposure=True, deconvolve=True, iterations=2, pointing_table=TABLE, backend="cpu")
    steps = aiaprep.normalize_exposure(
        aiaprep.register(aiaprep.deconvolve(aiaprep.update_pointing(m, pointing_table=TABLE), iterations=2, backend="cpu"), backend="cpu")
    )
    np.testing.assert_array_equal(one.data, steps.data)
    hist = one.meta["history"].split("\n")
    order = [i for i, h in enumerate(hist) for w in ("deconvolve", "register", "normalize_exposure") if w in h]
    assert len(order) >= 3 and order == sorted(order)
    assert one.meta["pntupd"] is True
