"""benchmarks/tr_test_split.py: the test split cut into each source's piece, the piece holding the
index marker cut in two at it, and every part scored."""
import json
import math

from tests.scripts import load_benchmark


def test_segments_cover_the_test_split_and_cut_at_the_index(tmp_path):
    mod = load_benchmark("tr_test_split")
    src = tmp_path / "src"
    src.mkdir()
    marker = mod.INDEX_MARKER.decode()
    # the marker sits in the last 5% of a.txt, as in ataturk_speeches.txt
    (src / "a.txt").write_text("".join(f"konuşma satırı {i}\n" for i in range(2000)) + marker +
                               "".join(f" Zile (C-I){i},\n" for i in range(40)))
    (src / "b.txt").write_text("".join(f"haber {i}\n" for i in range(2000)))
    out = tmp_path / "r.json"
    mod.main(["--source", str(src), "--preset", "transformer-tiny", "--steps", "2",
              "--out", str(out), "--", "--train.batch_size=2", "--train.device=cpu"])
    res = json.loads(out.read_text())
    segs = res["segments"]
    assert [s["name"] for s in segs] == ["a.txt before the index",
                                         f"a.txt index (from '{marker}')", "b.txt"]
    # contiguous, covering test.bin exactly; the index part starts with the marker's bytes
    assert segs[0]["start"] == 0 and segs[-1]["stop"] == res["test_bytes"]
    assert all(x["stop"] == y["start"] for x, y in zip(segs, segs[1:]))
    assert res["index_bytes"] == segs[1]["stop"] - segs[1]["start"] > len(mod.INDEX_MARKER)
    for part in segs + [res["val"], res["test"], res["test_without_index"]]:
        assert math.isfinite(part["bpb"]) and part["n_bytes"] > 0
    assert res["test_without_index"]["n_bytes"] == res["test_bytes"] - res["index_bytes"] - 1
