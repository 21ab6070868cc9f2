"The benchmark scripts' argument errors (their timings are not tests: see bench/)."
import subprocess, sys
from pathlib import Path

BENCH = Path(__file__).parents[1] / 'bench'

def run(*args):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=300)

def test_reference_step_names_a_folder_that_is_not_the_reference(tmp_path):
    (tmp_path / 'models').mkdir()
    out = run(BENCH / 'reference_step.py', '--reference', tmp_path)
    assert out.returncode != 0 and 'not a clone of https://github.com/clovaai/tunit' in out.stderr
    assert 'models/generator.py' in out.stderr and 'git clone https://github.com/clovaai/tunit' in out.stderr

def test_step_compare_asks_for_the_reference_folder():
    out = run(BENCH / 'step.py', '--compare', '--modes', 'eager', 'reference')
    assert out.returncode != 0 and "mode 'reference' needs --reference" in out.stderr

def test_guiding_benchmark_names_a_field_it_cannot_set():
    out = run(BENCH / 'guiding_digits.py', '--set', 'colour=red')
    assert out.returncode != 0 and "--set takes FIELD=VALUE with a TrainConfig field, not 'colour=red'" in out.stderr

def test_translation_benchmark_refuses_unknown_data_and_fields():
    out = run(BENCH / 'translation.py', '--data', 'faces')
    assert out.returncode != 0 and "invalid choice: 'faces'" in out.stderr
    out = run(BENCH / 'translation.py', '--set', 'colour=red')
    assert out.returncode != 0 and "--set takes FIELD=VALUE with a TrainConfig field, not 'colour=red'" in out.stderr
