"The notebooks as readers and the docs site see them: saved outputs present and clean, sizes, the site's sidebar."
import ast, json, re, shutil, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
NBS = sorted((ROOT / 'nbs').glob('*.ipynb'))
# a call that draws: matplotlib, the image and plot helpers of tunit_nb, IPython's Image
DRAWS = re.compile(r"\bplt\.(?!imread\b|close\b|get_cmap\b)\w+\(|\.imshow\(|\bsubplots\(|\bshow_images\(|\bplot_\w+\(|\bImage\((?:filename=)?")
MAX_NOTEBOOK_BYTES = 1_000_000


def _code_cells(nb):
    for i, cell in enumerate(json.loads(nb.read_text())['cells']):
        if cell['cell_type'] == 'code': yield i, ''.join(cell['source']), cell.get('outputs', [])


def _draws(source):
    "Does the cell draw when it runs? Exported cells and function bodies only define; `#| eval: false` never runs."
    if source.lstrip().startswith('#| export') or '#| eval: false' in source: return False
    code = '\n'.join(l for l in source.splitlines() if not l.lstrip().startswith(('%', '!')))   # IPython magics
    tree = ast.parse(code)
    tree.body = [node for node in tree.body if not isinstance(node, (ast.FunctionDef, ast.ClassDef))]
    return bool(DRAWS.search(ast.unparse(tree)))


def _text(outputs):
    return ''.join(''.join(o.get('text', '')) + ''.join(o.get('data', {}).get('text/plain', '')) +
                   ''.join(o.get('traceback', [])) for o in outputs)


def _has_picture(outputs):
    return any({'image/png', 'image/svg+xml', 'image/jpeg'} & set(o.get('data', {})) for o in outputs)


def test_notebooks_are_found():
    assert len(NBS) >= 12 and (ROOT / 'nbs' / 'index.ipynb') in NBS


@pytest.mark.parametrize('nb', NBS, ids=lambda p: p.name)
def test_every_drawing_cell_has_its_picture(nb):
    missing = [i for i, src, outs in _code_cells(nb) if _draws(src) and not _has_picture(outs)
               and '#| slow' not in src]
    assert not missing, f"{nb.name}: code cells {missing} draw but have no saved picture: run the notebook and save it"


@pytest.mark.parametrize('nb', NBS, ids=lambda p: p.name)
def test_saved_outputs_hold_no_error_and_no_local_path(nb):
    for i, src, outs in _code_cells(nb):
        assert not any(o.get('output_type') == 'error' for o in outs), f"{nb.name} cell {i}: a saved error"
        text = _text(outs)
        local = re.search(r'/work/|/home/|/tmp/|/root/|\.venv/|site-packages|ipykernel_\d+', text)
        assert not local, f"{nb.name} cell {i}: a local path in a saved output ({local.group()}): {text[:200]!r}"


@pytest.mark.parametrize('nb', NBS, ids=lambda p: p.name)
def test_notebooks_are_small_enough_to_read(nb):
    assert nb.stat().st_size <= MAX_NOTEBOOK_BYTES, f"{nb.name} is {nb.stat().st_size:,} bytes: smaller pictures, please"


def test_drawing_cells_are_recognised():
    assert _draws("show_images(x, nrow=8);") and _draws("fig, ax = plt.subplots()\nax.plot(x)")
    assert _draws("for name in names:\n    plot_history(h[name])")
    assert not _draws("#| export\ndef show_images(x): plt.imshow(x)")
    assert not _draws("def draw():\n    plt.plot(x)\n    return 1")
    assert not _draws("grid = translation_grid(f, a, b)\ntest_eq(grid.shape, (4, 3, 8, 8))")
    assert not _draws("test_eq(plt.imread(path).shape, (9, 9, 3))")


def test_sidebar_lists_the_chapters_and_survives_regeneration(tmp_path):
    "nbdev's own sidebar would list every file in nbs/ (styles.css, images, ...): ours lists the notebooks, in order."
    sidebar = (ROOT / 'nbs' / 'sidebar.yml').read_text()
    listed = re.findall(r'^\s*- (\S+)$', sidebar, re.M)
    assert listed == ['index.ipynb'] + [p.name for p in NBS if p.name != 'index.ipynb'], listed
    copy = tmp_path / 'repo'
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns('.git', '.venv', '_proc', '_docs', 'runs', '*.pt'))
    code = "from nbdev.quarto import nbdev_sidebar; nbdev_sidebar.__wrapped__()"   # what nbdev_proc_nbs and nbdev_docs call
    subprocess.run([sys.executable, '-c', code], cwd=copy, check=True, capture_output=True, timeout=120)
    assert (copy / 'nbs' / 'sidebar.yml').read_text() == sidebar


def test_index_diagram_is_drawn_by_jupyterlab_github_and_quarto():
    "```mermaid for JupyterLab and GitHub (README); the docs build's processor hands Quarto its ```{mermaid}."
    from fastcore.basics import AttrDict
    from tunit_nb._quarto import mermaid_for_quarto
    cells = [c for c in json.loads((ROOT / 'nbs' / 'index.ipynb').read_text())['cells'] if c['cell_type'] == 'markdown']
    diagram = next(''.join(c['source']) for c in cells if '```mermaid' in ''.join(c['source']))
    assert all(loss in diagram for loss in ('L_E', 'L_G', 'L_D', 'L_adv', 'R1', 'I(p; p⁺)'))
    cell = AttrDict(cell_type='markdown', source=diagram)
    mermaid_for_quarto(cell)
    assert '```{mermaid}\nflowchart' in cell.source and '```mermaid' not in cell.source
    assert 'procs = tunit_nb._quarto:mermaid_for_quarto' in (ROOT / 'settings.ini').read_text()
    assert '```mermaid\nflowchart' in (ROOT / 'README.md').read_text()


def test_readme_links_every_notebook_and_its_page():
    readme = (ROOT / 'README.md').read_text()
    for nb in NBS:
        if nb.name == 'index.ipynb': continue
        assert f'](nbs/{nb.name})' in readme, f"README.md does not link {nb.name}: run make readme"
        assert f'](https://tunit-nb.github.io/tunit_nb/{nb.stem}.html)' in readme, nb.stem


# ---- the library's structure: one concern per module, in the book's order

MODULES = {p.stem: p for p in (ROOT / 'tunit_nb').glob('*.py') if not p.stem.startswith('_')}


def _notebook_of(module):
    "The notebook a module is exported from, and its place in the book (the notebooks' sorted order: 00_, 00a_, 01_, ...)."
    for place, nb in enumerate(sorted(NBS)):
        first = ''.join(json.loads(nb.read_text())['cells'][0]['source'])
        if re.search(rf'#\| default_exp {module}\b', first): return nb, place
    raise AssertionError(f"no notebook exports tunit_nb/{module}.py")


@pytest.mark.parametrize('module', sorted(MODULES))
def test_a_module_imports_only_modules_before_it_in_the_book(module):
    _, number = _notebook_of(module)
    imported = set(re.findall(r'^from \.(\w+) import', MODULES[module].read_text(), re.M))
    later = {m: _notebook_of(m)[0].name for m in imported if _notebook_of(m)[1] >= number}
    assert not later, f"tunit_nb/{module}.py ({_notebook_of(module)[0].name}) imports modules of later chapters: {later}"


@pytest.mark.parametrize('module', sorted(MODULES))
def test_modules_are_small_and_tested_beside(module):
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= 400, f"tunit_nb/{module}.py has {lines} lines: split it by concern"
    assert (ROOT / 'tests' / f'test_{module}.py').is_file(), f"tests/test_{module}.py is missing"


def test_the_old_imports_still_work():
    from tunit_nb.training import TrainConfig, Trainer, Tunit, load_run, train, train_guiding, predict, plot_history
    from tunit_nb.model import TunitModel
    assert Tunit is TunitModel and TrainConfig.preset('tiny').size == 32


@pytest.mark.parametrize('nb', NBS, ids=lambda p: p.name)
def test_only_setup_cells_import(nb):
    "nbdev_proc_nbs (docs, README) runs every cell that imports: a visible cell that imports may only set constants besides."
    for i, source, _ in _code_cells(nb):
        if re.match(r'#\|\s*(export|exporti|exports|exec_doc|hide)\b', source.lstrip()) or '#| eval: false' in source: continue
        code = '\n'.join(l for l in source.splitlines() if not l.lstrip().startswith(('%', '!', '#|')))
        body = ast.parse(code).body
        if any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in body):
            setup = lambda n: isinstance(n, (ast.Import, ast.ImportFrom)) or (isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant))
            assert all(setup(n) for n in body), \
                f"{nb.name} cell {i} imports and runs code: move its imports to the notebook's hidden import cell"
