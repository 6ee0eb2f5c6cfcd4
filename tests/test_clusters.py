"""Clusters and 2-D views: scoring and clustering on data with known answers, and the
`layerbench clusters` command on the tiny synthetic corpus (fbank against a random model)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench import clusters as cl
from bench.config import ConfigError
from bench.data.manifest import Segment, Utterance


def test_agreement_on_known_clusterings():
    labels = ["a"] * 4 + ["b"] * 4
    assert cl.agreement(labels, [1] * 4 + [0] * 4) == pytest.approx({"ami": 1.0, "homogeneity": 1.0, "completeness": 1.0})
    split = cl.agreement(labels, [0, 0, 1, 1, 2, 2, 3, 3])  # pure clusters, each label split in two
    assert split["homogeneity"] == pytest.approx(1.0) and split["completeness"] == pytest.approx(0.5)
    merged = cl.agreement(labels, [0] * 8)
    assert merged["homogeneity"] == pytest.approx(0.0) and merged["completeness"] == pytest.approx(1.0)


def test_spherical_kmeans_clusters_by_direction_not_length():
    """Three directions, each at short and long lengths: cosine k-means finds the directions;
    Euclidean k-means with the same k is pulled apart by length."""
    rng = np.random.default_rng(0)
    dirs = np.eye(3)[:, :] + 0.02 * rng.standard_normal((3, 3))
    x, y = [], []
    for d in range(3):
        for scale in (1.0, 10.0):
            x.append(scale * (dirs[d] + 0.03 * rng.standard_normal((40, 3))))
            y += [d] * 40
    x = np.concatenate(x)
    sph = cl.spherical_kmeans(x, 3, seed=0, n_init=3, max_iter=100)
    euc = cl.kmeans(x, 3, seed=0, n_init=3, max_iter=100)
    assert cl.agreement(y, sph)["ami"] == pytest.approx(1.0)
    assert cl.agreement(y, euc)["ami"] < 0.8


def test_cluster_table_and_pairwise_comparison():
    labels = ["a", "a", "a", "b", "b", "c"]
    table = cl.cluster_table(np.array([0, 0, 0, 1, 1, 1]), labels)
    assert table == [{"cluster": 0, "size": 3, "majority": "a", "purity": 1.0},
                     {"cluster": 1, "size": 3, "majority": "b", "purity": pytest.approx(2 / 3)}]
    a = np.array([0, 0, 0, 1, 1, 1])
    b = np.array([5, 5, 7, 7, 7, 7])
    cmp = cl.compare_clusterings(a, b)
    assert cmp["a_to_b"] == [{"cluster": 0, "size": 3, "majority": 5, "purity": pytest.approx(2 / 3)},
                             {"cluster": 1, "size": 3, "majority": 7, "purity": 1.0}]
    assert cmp["homogeneity"] < 1.0 and cmp["completeness"] < 1.0


def test_time_points_take_the_phone_under_them(tmp_path):
    utt = Utterance(id="u", path=tmp_path / "u.flac", duration=0.1,
                    phones=[Segment("sil", 0.0, 0.02), Segment("AH0", 0.02, 0.05), Segment("K", 0.05, 0.1)])
    points = cl.sample_points({"u": utt}, step=320, max_points=100, seed=0)
    # centres at 10, 30, 50, 70, 90 ms: the first is in silence (left out)
    assert [(p.sample, p.label) for p in points] == [(480, "AH"), (800, "K"), (1120, "K"), (1440, "K")]
    assert len(cl.sample_points({"u": utt}, step=320, max_points=2, seed=0)) == 2


def test_config_errors_name_the_value():
    with pytest.raises(ConfigError, match=r"clusters.yaml preset 'default' with overrides\): unit must be one of "
                                          r"segment, frame, got 'frames'"):
        cl.load_config("default", {"unit": "frames"})
    with pytest.raises(ConfigError, match=r"views\[0\] must be one of pca, tsne, umap, got 'tsnee' \(did you mean 'tsne'"):
        cl.load_config("default", {"views": ["tsnee"]})
    with pytest.raises(ConfigError, match=r"kmeans.n_init must be an integer >= 1, got 0"):
        cl.load_config("default", {"kmeans": {"n_init": 0}})
    with pytest.raises(ConfigError, match="unit 'frame' labels time points by phone"):
        cl.load_config("default", {"unit": "frame", "labels": "word"})
    with pytest.raises(ConfigError, match="unknown key 'kmean'"):
        cl.load_config("quick", {"kmean": {"k": 3}})


@pytest.mark.slow
def test_clusters_command_fbank_beats_a_random_model(synth_root, tmp_path, capsys):
    """The must-show: AMI / homogeneity / completeness for full vectors and each 2-D view, and
    fbank's phone clusters agree with phones more than a random-weight model's do."""
    from bench.cli import main

    args = ["clusters", "--upstream", "fbank", "--upstream", "randinit:hubert-tiny", "--corpus", str(synth_root),
            "--layers", "0,3", "--preset", "quick", "--set", "num_utterances=40", "--set", "segment.per_label=12", "--pair", "1:0,2:0;2:0,2:3",
            "--out", str(tmp_path / "out"), "--name", "fb-vs-rand", "--no-progress"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    path = tmp_path / "out" / "clusters" / "fb-vs-rand.json"
    assert str(path) in printed and "pair fbank L0 vs randinit:hubert-tiny L0" in printed
    r = json.loads(path.read_text())
    assert r["k"] == r["n_labels"] + 1 and r["n_samples"] > 3 * r["k"]
    rows = {(e["upstream"], e["layer"]): e for e in r["per_layer"]}
    assert set(rows) == {("fbank", 0), ("randinit:hubert-tiny", 0), ("randinit:hubert-tiny", 3)}
    for e in rows.values():
        for method in ("kmeans", "spherical_kmeans"):
            assert set(e["full"][method]) == {"ami", "homogeneity", "completeness"}
        assert set(e["views"]) == {"pca", "tsne", "umap"}
        for check in e["views"].values():
            for s in (check["kmeans"], check["vs_full_kmeans"]):
                assert -0.1 < s["ami"] <= 1 and 0 <= s["homogeneity"] <= 1 and 0 <= s["completeness"] <= 1
        assert sum(c["size"] for c in e["clusters"]) == r["n_samples"]
    fb = rows[("fbank", 0)]["full"]["kmeans"]["ami"]
    assert fb > 0.3
    for layer in (0, 3):
        assert fb > rows[("randinit:hubert-tiny", layer)]["full"]["kmeans"]["ami"] + 0.15
    assert [(p["a"]["layer"], p["b"]["layer"]) for p in r["pairs"]] == [(0, 0), (0, 3)]
    plot_dir = path.parent / "fb-vs-rand"
    assert sorted(p.name for p in plot_dir.glob("*.png")) == [
        "ami_by_layer.png", "views_fbank_L0.png", "views_randinit_hubert-tiny_L0.png", "views_randinit_hubert-tiny_L3.png"]

    # same config: the finished result is reused; the leaderboard shows it in its own section
    before = path.stat().st_mtime_ns
    assert main(args) == 0 and path.stat().st_mtime_ns == before
    from results_fixtures import realistic_suite, write_all

    from leaderboard import build_leaderboard

    res = write_all(tmp_path / "results", realistic_suite())
    (res / "clusters").mkdir()
    (res / "clusters" / path.name).write_text(path.read_text())
    (res / "clusters" / "fb-vs-rand").mkdir()
    (res / "clusters" / "fb-vs-rand" / "ami_by_layer.png").write_bytes((plot_dir / "ami_by_layer.png").read_bytes())
    paths = build_leaderboard(res, tmp_path / "board")
    md = paths["clusters"].read_text()
    assert md.startswith("# Clusters and 2-D views") and "## fbank, randinit:hubert-tiny" in md and f"{fb:.3f}" in md and "umap:" in md
    page = paths["html"].read_text()
    assert "Clusters and 2-D views" in page and "plot:clusters_fb-vs-rand" in paths
