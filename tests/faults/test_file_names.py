"""Report and export file names keep their extension whatever the run's name: the stem is shortened,
never the suffix, so formats never share a file (a real run, the real CLI in this process)."""
import pytest

from msq.cli import main
from msq.report.paths import MAX_NAME, file_name, run_stem, safe_filename
from msq.report.render import SUFFIXES
from msq.runs import RunStore
from recovery_helpers import tiny_config, train_here

pytestmark = pytest.mark.xdist_group("fault-file-names")
TEXT_FORMATS = ("json", "csv", "md", "html", "bits", "nncf", "torchao")   # hawq: torchvision ResNets only
SWEEP_NAME = "sweep lam=0.001 init_bits=8 prune.threshold=0.5 hessian.probes=4 lr=0.05 seed_1"   # 80 characters
LONG_NAME = "m" * 60


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("names")
    train_here(home, tiny_config(pretrain=1, search=0, finetune=0, name=SWEEP_NAME))
    train_here(home, tiny_config(pretrain=1, search=0, finetune=0, name=LONG_NAME))
    return home


def run_id_named(home, name: str) -> str:
    return next(r["id"] for r in RunStore(home).list_runs() if r["name"] == name)


def report(home, run_id: str, fmt: str, *extra: str) -> str:
    assert main(["report", run_id, "--home", str(home), "-f", fmt, *extra]) == 0
    return run_id


@pytest.mark.parametrize("name", [SWEEP_NAME, LONG_NAME])
def test_every_report_format_keeps_its_extension_and_gets_its_own_file(home, name):
    run_id = run_id_named(home, name)
    reports = home / run_id / "reports"
    for fmt in TEXT_FORMATS:
        report(home, run_id, fmt)
    files = sorted(p.name for p in reports.iterdir())
    stem = safe_filename(run_stem("msq-report", RunStore(home).run(run_id)))
    assert stem.startswith(f"msq-report-{run_id}-") and len(stem.encode()) <= MAX_NAME   # the id is never cut
    assert files == sorted(f"{stem}.{SUFFIXES[fmt]}" for fmt in TEXT_FORMATS)   # one file each, suffix whole
    assert not [p for p in reports.iterdir() if p.name.startswith(".")]   # no temporary file left


def test_a_forced_csv_replaces_only_the_csv(home, capsys):
    run_id = run_id_named(home, LONG_NAME)
    reports = home / run_id / "reports"
    report(home, run_id, "html", "--force")
    report(home, run_id, "csv", "--force")
    html = {p: p.read_bytes() for p in reports.glob("*.html")}
    capsys.readouterr()
    report(home, run_id, "csv", "--force")
    assert {p: p.read_bytes() for p in reports.glob("*.html")} == html    # the HTML report is untouched
    [csv] = reports.glob("*.csv")
    assert [l for l in capsys.readouterr().err.splitlines() if "replaced" in l] == [f"replaced the existing {csv}"]


def test_export_names_keep_the_double_suffix(home, capsys):
    run_id = run_id_named(home, SWEEP_NAME)
    assert main(["export", run_id, "--home", str(home)]) == 0
    [packed] = (home / run_id / "exports").iterdir()
    assert packed.name.endswith(".msq.pt") and packed.name.startswith(f"msq-model-{run_id}-")
    assert len(packed.name.encode()) <= MAX_NAME + len(".msq.pt")


def test_file_name_cuts_the_stem_never_the_suffix():
    stem = "msq-report-20260101-000000-abcdef-" + "模型" * 40
    names = {suffix: file_name(stem, suffix) for suffix in (".html", ".csv", ".bits.json", ".bit_config.py",
                                                            "-allocation.png", "-figures")}
    assert all(name.endswith(suffix) for suffix, name in names.items())
    assert len(set(names.values())) == len(names)
    assert {name[: -len(suffix)] for suffix, name in names.items()} == {safe_filename(stem)}
    with pytest.raises(ValueError, match="file suffix '/x' is invalid"):
        file_name(stem, "/x")
