"""The layout a newcomer reads: two wings (training, measurement) on shared packages.

Each package may import only from packages below it, so there are no cycles between them:

    runtime       errors, atomic files, devices and precision, torchrun processes
    mmode         image files, masks and their runs, windows, scanner conventions, scores
    quicknat      the model, its settings, loading weights, our checkpoint schema
    dataset.py    training data          preprocessing/  recordings -> training windows
    training/     config, losses, outputs, resuming
                                         measurement/    windows -> edges -> beats -> report
    trainer.py    the training loop
    run.py        training's entry       test.py         measurement's entry
                                         agreement/      measured against manual readings
    bench/        benchmarks of all of it
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {
    "runtime": 0,
    "mmode": 1,
    "quicknat": 2,
    "dataset": 3,
    "preprocessing": 3,
    "training": 4,
    "measurement": 4,
    "trainer": 5,
    "agreement": 5,
    "run": 6,
    "test": 6,
    "bench": 7,
}
LONG_MODULES = {"preprocessing/simulator.py"}  # the simulator reads best in one piece
MAX_LINES = 400


def project_modules() -> list[Path]:
    return sorted(
        p
        for p in ROOT.rglob("*.py")
        if p.relative_to(ROOT).parts[0] in {f"{name}.py" for name in LAYERS} | set(LAYERS)
    )


def unit(path_or_module: str) -> str:
    """The top-level package or module a path or dotted module name belongs to."""
    return path_or_module.replace("/", ".").split(".")[0]


def imports_of(path: Path) -> set[str]:
    """Dotted names of the project modules `path` imports."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .config import X
                base = ".".join([package, base]) if base else package
            found.add(base)
    return {name for name in found if unit(name) in LAYERS}


def test_the_top_level_holds_only_the_fixed_files():
    python_files = {p.name for p in ROOT.glob("*.py")}
    assert python_files == {"run.py", "trainer.py", "dataset.py", "test.py"}
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    assert packages == {name for name in LAYERS if (ROOT / name).is_dir()} - {"tests"}


def test_no_module_is_too_long_to_read():
    long = {
        str(p.relative_to(ROOT)): n
        for p in project_modules()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert set(long) <= LONG_MODULES, long


def test_packages_import_only_from_below_or_within_themselves():
    upward = []
    for path in project_modules():
        own = unit(str(path.relative_to(ROOT)))
        for name in imports_of(path):
            if unit(name) != own and LAYERS[unit(name)] >= LAYERS[own]:
                upward.append(f"{path.relative_to(ROOT)} imports {name}")
    assert upward == []


def test_no_import_cycles_between_modules():
    graph = {}
    for path in project_modules():
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        graph[name] = {m for m in imports_of(path)}
    modules = set(graph)
    # `from quicknat import X` names the package; its __init__ is a node like any other.
    graph = {m: {i for i in imported if i in modules and i != m} for m, imported in graph.items()}
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for imported in graph[module]:
            if state.get(imported) == "open":
                raise AssertionError(" -> ".join([*trail, module, imported]))
            if imported not in state:
                visit(imported, [*trail, module])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
