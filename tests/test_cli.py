"""The `tunit` command as a user runs it: real processes (`python -m tunit_nb.cli` and the console script),
image folders written as PNG files, signals, and the one-line errors.

Each process pays some 5 s of imports (torch, torchvision), so the error catalogue runs in-process through
`main()` (same parser, same handlers, same exit status), and real processes check what only a process can
show: the exit status, stderr without a traceback, the console script, signals."""
import json, os, signal, subprocess, sys, time
from pathlib import Path

import pytest
import torch

from tunit_nb.cli import build_parser, main, train_config
from tunit_nb.data import Digits, save_images
from tunit_nb.training import load_run, training_images

torch.set_num_threads(1)
TUNIT = [sys.executable, '-m', 'tunit_nb.cli']
ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}
FAST = ['--preset', 'tiny', '--warmup-iters', '10', '--iters', '14', '--quiet']


def tunit(*args, exe=TUNIT):
    "Run the command in a new process: CompletedProcess with text stdout and stderr."
    return subprocess.run([*exe, *map(str, args)], capture_output=True, text=True, env=ENV, timeout=300)


def one_error_line(stderr:str) -> bool:
    return stderr.startswith('tunit: error:') and stderr.count('\n') == 1 and 'Traceback' not in stderr


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    "A labelled folder (200 digits in class sub-folders), an unlabelled one (100), sources (3) and references (2)."
    root = tmp_path_factory.mktemp('images')
    digits = Digits('all', size=32)
    save_images(digits.images[:200], root / 'labelled', digits.targets[:200])
    save_images(digits.images[200:300], root / 'unlabelled')
    save_images(digits.images[300:303], root / 'sources', prefix='src')
    save_images(digits.images[303:305], root / 'references', prefix='ref')
    return root


@pytest.fixture(scope='module')
def run(folders, tmp_path_factory):
    "A tiny run trained on the labelled folder by a real process: (run folder, CompletedProcess)."
    out = tmp_path_factory.mktemp('runs') / 'labelled'
    return out, tunit('train', '--data', folders / 'labelled', '--out', out, *FAST)


def test_console_script_is_installed():
    exe = Path(sys.executable).parent / 'tunit'
    assert exe.exists(), "`pip install -e .` installs settings.ini's console script `tunit` beside python"
    result = tunit('--help', exe=[str(exe)])
    assert result.returncode == 0 and all(c in result.stdout for c in ('train', 'translate', 'eval'))


def test_train_on_a_labelled_folder(run, folders):
    out, result = run
    assert result.returncode == 0, result.stderr
    assert 'clustering_accuracy=' in result.stdout and f'run folder: {out}' in result.stdout
    metrics = json.loads((out / 'metrics.json').read_text())
    assert 0 <= metrics['clustering_accuracy'] <= 1 and metrics['n_images'] == 40 and metrics['iteration'] == 14
    config = json.loads((out / 'config.json').read_text())
    assert config['data'] == str(folders / 'labelled') and config['size'] == 32 and config['iters'] == 14
    assert (out / 'report.json').exists() and (out / 'checkpoints' / 'latest').read_text() == 'iter-0000014.pt'


def test_train_on_an_unlabelled_folder(folders, tmp_path):
    result = tunit('train', '--data', folders / 'unlabelled', '--out', tmp_path / 'run', *FAST, '--no-eval')
    assert result.returncode == 0, result.stderr
    assert (tmp_path / 'run' / 'checkpoints' / 'iter-0000014.pt').exists()
    assert not (tmp_path / 'run' / 'metrics.json').exists()            # --no-eval
    # the evaluation of an unlabelled run: cluster sizes, no scores against labels (in-process, same code)
    assert main(['eval', '--run', str(tmp_path / 'run'), '--no-fid', '--quiet']) == 0
    report = json.loads((tmp_path / 'run' / 'report.json').read_text())
    assert 'clustering_accuracy' not in report and sum(report['cluster_sizes']) == 20


def test_a_folder_without_preset_gets_the_cpu_preset_a_reason_and_a_time_estimate(folders, tmp_path):
    "On a CPU, a folder without --preset trains the photos preset, says why, and prints the measured speed of each phase."
    out = tmp_path / 'run'
    result = tunit('train', '--data', folders / 'unlabelled', '--out', out, '--iters', '36', '--warmup-iters', '20',
                   '--batch-size', '8', '--warmup-batch-size', '8', '--no-eval', '--device', 'cpu')
    assert result.returncode == 0, result.stderr
    assert "preset photos: no GPU: 'photos', the CPU preset for photographs" in result.stdout
    assert 'restart_iters 250 -> ' in result.stderr                    # E's trials fitted into the shorter warm-up
    assert 's per warm-up step' in result.stdout + result.stderr and 's per GAN step' in result.stdout + result.stderr
    config = json.loads((out / 'config.json').read_text())
    assert config['flip'] and config['size'] == 64 and config['warmup_iters'] == 20 and config['restarts'] == 2
    assert (out / 'cache').is_dir() and len(list((out / 'cache').glob('*.u8'))) == 1   # decoded once, beside the run


def test_without_data_train_takes_the_main_demonstration_and_a_preset_its_own_data(run, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    def config(*args):
        cfg, out, origin = train_config(build_parser().parse_args(['train', *map(str, args)]))
        return cfg.data, cfg.k, cfg.g_content, str(out), origin.split(':')[0]
    assert config() == ('styled-digits', 5, 16, 'runs/styled-digits', 'preset styled-digits')
    assert config('--data', 'digits') == ('digits', 10, 4, 'runs/digits', 'preset digits')
    assert config('--preset', 'digits') == ('digits', 10, 4, 'runs/digits', 'preset digits')
    assert config('--preset', 'styled-digits', '--k', 4)[:2] == ('styled-digits', 4)
    assert config('--preset', 'tiny')[0] == 'digits'                  # a preset of no data set: the default data
    out, _ = run                                                      # a folder's run, resumed without --data
    assert config('--out', out, '--resume')[0] == json.loads((out / 'config.json').read_text())['data']


def test_translate_with_a_reference_file(run, folders, tmp_path):
    result = tunit('translate', '--run', run[0], '--src', folders / 'sources' / 'src00001.png',
                   '--ref', folders / 'references' / 'ref00000.png', '--out', tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ['src00001_to_ref00000.png']


def test_translate_with_a_reference_folder(run, folders, tmp_path):
    result = tunit('translate', '--run', run[0], '--src', folders / 'sources', '--ref', folders / 'references',
                   '--out', tmp_path, '--device', 'cpu')
    assert result.returncode == 0, result.stderr
    assert len(list(tmp_path.glob('src*_to_ref*.png'))) == 3 * 2 and (tmp_path / 'grid.png').exists()
    assert '6 translation(s) and grid.png' in result.stdout


def test_translate_into_a_pseudo_domain(run, folders, tmp_path):
    cfg, model = load_run(run[0], 'cpu')
    data = training_images(cfg)
    busiest = int(model.domain(torch.stack([data[i][0] for i in range(len(data))])).mode().values)
    result = tunit('translate', '--run', run[0], '--src', folders / 'sources', '--domain', busiest, '--out', tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ['grid.png'] + [f'src0000{i}_domain{busiest}.png' for i in range(3)]


def test_eval_writes_the_report(run):
    (run[0] / 'report.json').unlink()
    result = tunit('eval', '--run', run[0], '--quiet', '--no-download')
    assert result.returncode == 0, result.stderr
    report = json.loads((run[0] / 'report.json').read_text())
    assert report['n_images'] == 40 and 'nmi' in report and 'nmi=' in result.stdout
    assert 'Traceback' not in result.stderr


def test_eval_fetches_missing_fid_weights_or_says_where_they_go(tmp_path, monkeypatch, capsys):
    "Weights absent from torch's hub cache: fetched (checked) when reachable; a note naming the place when not."
    import hashlib
    import tunit_nb.cli as cli
    from tunit_nb.fid import InceptionFeatures, _fid_state_dict, default_fid_weights
    monkeypatch.setattr(torch.hub, '_hub_dir', None)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    served = tmp_path / 'weights.pth'
    torch.save(_fid_state_dict(pretrained=False), served)
    monkeypatch.setattr(cli, 'FID_WEIGHTS_URL', (tmp_path / 'gone.pth').as_uri())       # unreachable
    assert cli.fid_extractor(progress=False) is None and not default_fid_weights().exists()
    err = capsys.readouterr().err
    assert 'note: no FID: could not download' in err and str(default_fid_weights()) in err
    assert cli.fid_extractor(download=False) is None and '--no-download' in capsys.readouterr().err
    monkeypatch.setattr(cli, 'FID_WEIGHTS_URL', served.as_uri())
    monkeypatch.setattr(cli, 'FID_WEIGHTS_HASH', hashlib.sha256(served.read_bytes()).hexdigest()[:8])
    assert isinstance(cli.fid_extractor(progress=False), InceptionFeatures) and default_fid_weights().is_file()
    assert 'fetching' in capsys.readouterr().err


def test_a_user_error_in_a_real_process_is_one_line(tmp_path):
    result = tunit('train', '--preset', 'tiny', '--size', '48', '--out', tmp_path / 'run')
    assert result.returncode == 2 and 'power of two' in result.stderr and one_error_line(result.stderr), result.stderr
    assert not (tmp_path / 'run').exists()                               # refused before the run folder is made


ERRORS = [  # (arguments, what stderr says); RUN, DATA and TMP are replaced by the fixtures' paths
    (['train', '--preset', 'huge'], "invalid choice: 'huge'"),
    (['train', '--preset', 'tiny', '--size', '48'], 'power of two'),
    (['train', '--preset', 'tiny', '--size', '16'], '>= 32'),
    (['train', '--preset', 'tiny', '--k', '1'], 'at least 2'),
    (['train', '--preset', 'tiny', '--batch-size', 'many'], "invalid int value: 'many'"),
    (['train', '--preset', 'tiny', '--warmup-batch-size', 'many'], "invalid int or none value: 'many'"),
    (['train', '--preset', 'tiny', '--data', 'DATA', '--batch-size', '5000', '--out', 'TMP/big'], 'fewer than one batch of 5000'),
    (['train', '--preset', 'tiny', '--data', 'TMP/no/such/folder', '--out', 'TMP/x'], 'does not exist'),
    (['train', '--preset', 'tiny', '--data', 'DATA', '--out', 'RUN'], '--resume'),
    (['train', '--out', 'RUN', '--resume', '--lr', '0.5'], 'lr differ'),
    (['train', '--out', 'RUN', '--resume', '--force'], 'not allowed with argument --resume'),
    (['train', '--out', 'TMP/nothing', '--resume', '--preset', 'tiny'], 'nothing to resume'),
    (['translate', '--src', 'DATA', '--ref', 'DATA', '--out', 'TMP/t'], 'required: --run'),
    (['translate', '--run', 'TMP', '--src', 'DATA', '--ref', 'DATA', '--out', 'TMP/t'], 'is not a run folder'),
    (['translate', '--run', 'RUN', '--src', 'TMP/none.png', '--ref', 'DATA', '--out', 'TMP/t'], 'does not exist'),
    (['translate', '--run', 'RUN', '--src', 'DATA', '--domain', '10', '--out', 'TMP/t'], 'out of range'),
    (['translate', '--run', 'RUN', '--src', 'DATA', '--domain', '-1', '--out', 'TMP/t'], 'out of range'),
    (['eval'], 'required: --run'),
    (['eval', '--run', 'RUN', '--fid-weights', 'TMP/inception.pth'], 'does not exist'),
    (['eval', '--run', 'RUN', '--checkpoint', 'TMP/iter-0000001.pt'], 'does not exist'),
]


@pytest.mark.parametrize('args,message', ERRORS, ids=[' '.join(a[:2]) + f' ({m})' for a, m in ERRORS])
def test_user_errors_are_one_line_and_exit_2(run, folders, tmp_path, capsys, args, message):
    paths = {'RUN': str(run[0]), 'DATA': str(folders / 'labelled'), 'TMP': str(tmp_path)}
    argv = [paths.get(a, a.replace('TMP/', paths['TMP'] + '/')) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and one_error_line(err), err


@pytest.mark.parametrize('signum,status', [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_saves_a_checkpoint_and_resume_continues(tmp_path, signum, status):
    "SIGTERM (what schedulers send) or SIGINT (Ctrl-C) stops training at a checkpoint (status 143, 130); `--resume` alone continues."
    out = tmp_path / 'run'
    process = subprocess.Popen([*TUNIT, 'train', '--preset', 'tiny', '--iters', '100000', '--out', str(out), '--quiet'],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.time() + 120
    while not ((out / 'log.jsonl').exists() and (out / 'log.jsonl').read_text()) and time.time() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.2)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == status, stderr
    assert f'{signal.Signals(signum).name} received' in stderr and '--resume' in stderr and 'Traceback' not in stderr
    stopped = int((out / 'checkpoints' / 'latest').read_text()[5:12])
    assert stopped >= 5
    result = tunit('train', '--out', out, '--resume', '--iters', stopped + 2, '--quiet', '--no-eval')
    assert result.returncode == 0, result.stderr
    assert (out / 'checkpoints' / 'latest').read_text() == f'iter-{stopped + 2:07d}.pt'
    assert json.loads((out / 'config.json').read_text())['sty_dim'] == 16     # the tiny preset's, from config.json


def test_a_failed_start_leaves_no_run_behind(tmp_path, capsys):
    assert main(['train', '--preset', 'tiny', '--batch-size', '5000', '--out', str(tmp_path / 'run'), '--quiet']) == 2
    assert not (tmp_path / 'run' / 'config.json').exists()


def test_sigkill_loses_only_the_steps_since_the_last_checkpoint(tmp_path):
    "A hard kill cannot be caught: the newest checkpoint is whole (written atomically) and the run resumes from it."
    out = tmp_path / 'run'
    process = subprocess.Popen([*TUNIT, 'train', '--preset', 'tiny', '--iters', '100000', '--checkpoint-every', '10',
                                '--log-every', '5', '--out', str(out), '--quiet'],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.time() + 120
    while not (out / 'checkpoints' / 'latest').exists() and time.time() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.2)
    time.sleep(1.5)                                               # well into the steps after a checkpoint
    process.kill(); process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    saved = int((out / 'checkpoints' / 'latest').read_text()[5:12])
    logged = [json.loads(l)['iteration'] for l in (out / 'log.jsonl').read_text().splitlines()]
    assert saved % 10 == 0 and max(logged) >= saved               # what was logged past the checkpoint is lost
    result = tunit('train', '--out', out, '--resume', '--iters', saved + 10, '--quiet', '--no-eval')
    assert result.returncode == 0, result.stderr
    logged = [json.loads(l)['iteration'] for l in (out / 'log.jsonl').read_text().splitlines()]
    assert logged == list(range(5, saved + 11, 5))                # continued from the checkpoint, no step logged twice
