"""LocalContainerManager pieces that need no process: image -> runtime mapping, the cluster
record round trip, addresses and the build hook contract."""

from __future__ import annotations

import json

import pytest

from clipper_admin import ClipperException, ContainerManager, LocalContainerManager
from clipper_admin.local.cluster_record import ClusterPaths, ClusterRecord, ReplicaRecord
from clipper_admin.local.processes import ProcessHandle
from clipper_admin.local.runtimes import image_stem, runtime_module_for_image


@pytest.mark.parametrize(
    ("image", "module"),
    [
        ("clipper/noop-container:0.1.0", "containers.python.noop_container"),
        ("noop-container", "containers.python.noop_container"),
        ("clipper/python311-closure-container:0.1.0", "containers.python.closure_container"),
        ("localhost:5000/clipper/sum-container:develop", "containers.python.sum_container"),
        ("clipper/pytorch311-container:0.1.0", "containers.python.pytorch_container"),
    ],
)
def test_image_runtime_mapping(image: str, module: str) -> None:
    assert runtime_module_for_image(image) == module


def test_unknown_image_is_refused_with_the_way_out() -> None:
    with pytest.raises(ClipperException, match="image_runtimes=\\{'my-server': '<python module>'\\}"):
        runtime_module_for_image("me/my-server:1")
    assert runtime_module_for_image("me/my-server:1", {"my-server": "pkg.mod"}) == "pkg.mod"


def test_image_stem() -> None:
    assert image_stem("localhost:5000/a/b-c:1.2") == "b-c"
    assert image_stem("b@sha256:abc") == "b"


def test_cluster_paths_honour_clipper_home_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("CLIPPER_HOME", str(tmp_path))
    paths = ClusterPaths.for_cluster("c1", None, None)
    assert paths.record_file == tmp_path / "clusters" / "c1" / "cluster.json"
    assert paths.log_dir == tmp_path / "clusters" / "c1" / "logs"
    assert ClusterPaths.for_cluster("c1", tmp_path / "x", tmp_path / "l").log_dir == tmp_path / "l"


def test_cluster_record_round_trips_through_json(tmp_path) -> None:
    paths = ClusterPaths.for_cluster("c1", tmp_path, None)
    handle = ProcessHandle(123, 1700000000.5, "/x/redis.log")
    record = ClusterRecord(
        "c1", "127.0.0.1", "127.0.0.1", 6379, 1337, 1338, 7000, core={"redis": handle},
        replicas=[ReplicaRecord("m", "1", "m_1-0", "img", "doubles", handle)], next_replica_index=1,
    )
    record.save(paths)
    assert json.loads(paths.record_file.read_text())["replicas"][0]["replica_name"] == "m_1-0"
    assert ClusterRecord.load(paths) == record


def test_addresses_come_from_the_record_on_connect(tmp_path) -> None:
    paths = ClusterPaths.for_cluster("c2", tmp_path, None)
    ClusterRecord("c2", "127.0.0.1", "127.0.0.1", 1, 2, 3, 4).save(paths)
    manager = LocalContainerManager(cluster_name="c2", clipper_home=str(tmp_path))
    assert manager.get_query_addr() == "127.0.0.1:1337"
    manager.connect()  # processes are gone: connects with a warning, addresses from the record
    assert (manager.get_admin_addr(), manager.get_query_addr(), manager.get_metric_addr()) == (
        "127.0.0.1:3", "127.0.0.1:2", "127.0.0.1:2"
    )
    assert manager.cluster_identifier == "c2"


def test_base_build_model_is_not_implemented() -> None:
    class Bare(ContainerManager):
        pass

    for name in list(Bare.__abstractmethods__):
        setattr(Bare, name, lambda *a, **k: None)
    Bare.__abstractmethods__ = frozenset()
    with pytest.raises(NotImplementedError, match="Bare cannot build"):
        Bare().build_model("m", "1", "/tmp", "img")


def test_local_build_model_refuses_wrong_python_and_unknown_images(tmp_path) -> None:
    manager = LocalContainerManager(cluster_name="c3", clipper_home=str(tmp_path))
    with pytest.raises(ClipperException, match="cloudpickle cannot load"):
        manager.build_model("m", "1", str(tmp_path), "clipper/python36-closure-container:0.1.0")
    with pytest.raises(ClipperException, match="cannot run image"):
        manager.build_model("m", "1", str(tmp_path), "me/unknown:1")


def test_local_build_model_keeps_a_copy_of_the_model_directory(tmp_path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "func.pkl").write_bytes(b"payload")
    manager = LocalContainerManager(cluster_name="c4", clipper_home=str(tmp_path / "home"))
    image = manager.build_model("m", "1", str(source), "clipper/noop-container:0.1.0", "reg:5000")
    assert image == "reg:5000/c4-m:1"
    (source / "func.pkl").unlink()
    stored = json.loads(manager.paths.images_file.read_text())[image]
    assert stored["base_image"] == "clipper/noop-container:0.1.0" and stored["python"] is None
    assert (tmp_path / "home/clusters/c4/models/m_1/model/func.pkl").read_bytes() == b"payload"


ESCAPING = "../../../../escaped"


def _files_under(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_manager_entry_points_refuse_names_that_escape_before_writing(tmp_path) -> None:
    home = tmp_path / "a" / "b" / "c" / "home"
    source = tmp_path / "src"
    source.mkdir()
    (source / "func.pkl").write_bytes(b"payload")
    before = _files_under(tmp_path)
    manager = LocalContainerManager(cluster_name="c5", clipper_home=str(home))
    image = "clipper/noop-container:0.1.0"
    calls = [
        lambda: manager.build_model(ESCAPING, "1", str(source), image),
        lambda: manager.build_model("m", "../../1", str(source), image),
        lambda: manager.set_num_replicas(ESCAPING, "1", "doubles", image, 1),
        lambda: manager.deploy_model("m", "../1", "doubles", image, 1),
        lambda: manager.get_num_replicas("M_1", "1"),
    ]
    for call in calls:
        with pytest.raises(ClipperException, match="must be a valid DNS-1123 subdomain"):
            call()
    assert _files_under(tmp_path) == before


@pytest.mark.parametrize("name", ["", ".", "..", "../x", "a/b"])
def test_cluster_names_must_name_one_directory(tmp_path, name: str) -> None:
    with pytest.raises(ClipperException, match="Invalid cluster name"):
        LocalContainerManager(cluster_name=name, clipper_home=str(tmp_path))


def test_paths_resolve_inside_their_base(tmp_path) -> None:
    paths = ClusterPaths.for_cluster("c6", tmp_path, None)
    assert paths.inside(paths.models_dir, "m_1") == paths.models_dir / "m_1"
    for parts in (("..", "x"), ("/etc",), ("",), (".",)):
        with pytest.raises(ClipperException, match="does not stay inside"):
            paths.inside(paths.models_dir, *parts)
    # A symlink inside that leads outside does not count as inside.
    paths.models_dir.mkdir(parents=True)
    (paths.models_dir / "link").symlink_to(tmp_path)
    with pytest.raises(ClipperException, match="does not stay inside"):
        paths.inside(paths.models_dir, "link", "x")


def test_store_model_directory_never_deletes_outside_the_cluster(tmp_path) -> None:
    from clipper_admin.local.model_store import store_model_directory

    source = tmp_path / "src"
    source.mkdir()
    (source / "func.pkl").write_bytes(b"new")
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("keep")
    root = tmp_path / "cluster"
    root.mkdir()
    with pytest.raises(ClipperException, match="outside"):
        store_model_directory(str(source), precious, root)
    with pytest.raises(ClipperException, match="outside"):
        store_model_directory(str(source), root / ".." / "precious", root)
    # A symlink in the cluster directory that leads there is refused; its target is untouched.
    (root / "model").symlink_to(precious)
    with pytest.raises(ClipperException, match="outside"):
        store_model_directory(str(source), root / "model", root)
    assert (precious / "keep.txt").read_text() == "keep"
    stored = store_model_directory(str(source), root / "m_1" / "model", root)
    assert (stored / "func.pkl").read_bytes() == b"new"
