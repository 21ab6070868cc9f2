"The reference's checkpoints (clovaai/tunit) imported and written, and model files that load no code."
import json, os, pickle
from pathlib import Path

import pytest
import torch

from tunit_nb.cli import main
from tunit_nb.config import TrainConfig
from tunit_nb.model import TunitModel
from tunit_nb.reference import (adain_order, check_reference_layout, export_reference, export_safetensors, from_reference,
                                import_reference, read_reference, reference_table, to_reference)
from tunit_nb.styled_digits import StyledDigits
from tunit_nb.data import to_signed
from tunit_nb.training import Checkpoints, load_checkpoint, load_run, train

LAYOUT = json.loads((Path(__file__).parent / 'reference_layout.json').read_text())


@pytest.fixture(scope='module')
def paper_run(tmp_path_factory):
    "A run of the paper's networks at 32 px: two warm-up and two GAN steps on the styled digits."
    out = tmp_path_factory.mktemp('paper') / 'run'
    cfg = TrainConfig.preset('paper', size=32, data='styled-digits', k=5, batch_size=4, warmup_iters=2, iters=4,
                             log_every=1, sample_every=2, checkpoint_every=2)
    train(cfg, out, progress=False, evaluate=False)
    return out


def sources(n=4):
    x = to_signed(StyledDigits('heldout', size=32).images[:2 * n])
    return x[:n], x[n:]


@pytest.mark.parametrize('part', ['C', 'G', 'D'])
def test_the_export_has_every_name_and_shape_of_the_references_networks_in_its_order(part):
    torch.manual_seed(0)
    model = TunitModel(TrainConfig.preset('paper', size=LAYOUT['size'], k=LAYOUT['k'], sty_dim=LAYOUT['sty_dim']))
    net = dict(C=model.guiding, G=model.generator, D=model.discriminator)[part]
    exported = to_reference(part, net)
    assert [[n, list(t.shape)] for n, t in exported.items()] == LAYOUT[part]
    back = from_reference(part, net, exported, part)
    assert all(torch.equal(back[n], t) for n, t in net.state_dict().items())


def test_the_adain_rows_swap_scale_and_bias_within_each_layer():
    G = TunitModel(TrainConfig.preset('paper', size=32)).generator
    order = adain_order(G)
    first = G.decoder.res[0].conv1.out_channels           # the first AdaIN layer: [scale | bias] -> [bias | scale]
    assert order[:first].tolist() == list(range(first, 2 * first)) and order[first:2 * first].tolist() == list(range(first))
    assert torch.equal(order[order], torch.arange(G.decoder.n_adain))
    table = reference_table('G', G)
    assert sum(how is not None and name is not None for _, name, how in table) == 2   # the MLP's last weight and bias


def test_a_run_exported_to_the_reference_and_imported_back_translates_identically(paper_run, tmp_path):
    saved = export_reference(paper_run, tmp_path / 'logs' / 'model_4.ckpt')
    assert (tmp_path / 'logs' / 'checkpoint.txt').read_text().split() == ['model_4.ckpt']
    run = import_reference(tmp_path / 'logs', tmp_path / 'imported', data='styled-digits')
    (_, ours), (cfg, imported) = load_run(paper_run, 'cpu'), load_run(run, 'cpu')
    x_src, x_ref = sources()
    assert torch.equal(imported.translate(x_src, x_ref), ours.translate(x_src, x_ref))
    assert torch.equal(imported.style(x_ref), ours.style(x_ref)) and torch.equal(imported.domain(x_src), ours.domain(x_src))
    assert (cfg.size, cfg.k, cfg.sty_dim, cfg.data) == (32, 5, 128, 'styled-digits')
    # the optimisers' states survive both conversions, G's MLP rows included
    before, after = Checkpoints(paper_run / 'checkpoints').load()[0], Checkpoints(run / 'checkpoints').load()[0]
    for name in ('opt_e', 'opt_g', 'opt_d'):
        a, b = before[name]['state'], after[name]['state']
        assert a.keys() == b.keys() and all(torch.equal(a[i][k].float(), b[i][k].float()) for i in a for k in a[i])
    raw = torch.load(saved, weights_only=True)
    assert {'epoch', 'C_state_dict', 'C_EMA_state_dict', 'G_state_dict', 'G_EMA_state_dict', 'D_state_dict',
            'c_optimizer', 'g_optimizer', 'd_optimizer'} == set(raw)


def test_an_imported_run_translates_evaluates_and_fine_tunes(paper_run, tmp_path, capsys):
    export_reference(paper_run, tmp_path / 'logs' / 'model_4.ckpt')
    from torchvision.utils import save_image
    save_image(torch.rand(3, 32, 32), tmp_path / 'x.png')
    translate = lambda run: main(['translate', '--run', str(run), '--src', str(tmp_path / 'x.png'), '--domain', '1', '--out', str(tmp_path / 'o')])
    assert main(['import-reference', str(tmp_path / 'logs'), '--out', str(tmp_path / 'bare')]) == 0
    assert translate(tmp_path / 'bare') == 2 and 'imported without --data' in capsys.readouterr().err
    assert main(['import-reference', str(tmp_path / 'logs'), '--out', str(tmp_path / 'run'), '--data', 'styled-digits']) == 0
    assert translate(tmp_path / 'run') == 0 and (tmp_path / 'o' / 'x_domain1.png').is_file()
    assert main(['eval', '--run', str(tmp_path / 'run'), '--no-fid', '--quiet']) == 0
    assert 'content_accuracy' in json.loads((tmp_path / 'run' / 'report.json').read_text())
    assert main(['train', '--out', str(tmp_path / 'run'), '--resume', '--iters', '2', '--no-eval', '--quiet']) == 0
    state = Checkpoints(tmp_path / 'run' / 'checkpoints').load()[0]
    assert state['iteration'] == 2 and state['phase'] == 'gan'
    records = [json.loads(l) for l in (tmp_path / 'run' / 'log.jsonl').read_text().splitlines()]
    assert records[-1]['iteration'] == 2 and 'g_adv' in records[-1]   # GAN steps from the first: no warm-up


def test_checkpoints_saved_from_ddp_and_without_the_raw_networks_import(paper_run, tmp_path):
    ckpt = torch.load(export_reference(paper_run, tmp_path / 'a' / 'model_1.ckpt'), weights_only=True)
    slim = {'epoch': 1, **{k: {'module.' + n: t for n, t in ckpt[k].items()} for k in ('C_EMA_state_dict', 'G_EMA_state_dict')}}
    torch.save(slim, tmp_path / 'slim.ckpt')
    run = import_reference(tmp_path / 'slim.ckpt', tmp_path / 'run')
    state = Checkpoints(run / 'checkpoints').load()[0]['model']
    assert all(torch.equal(state[f'generator.{n}'], state[f'generator_ema.{n}']) for n in ('mlp.0.weight', 'encoder.stem.bias'))
    assert json.loads((run / 'imported.json').read_text())['networks'] == ['C_EMA', 'G_EMA']


def test_import_reference_names_what_does_not_fit(paper_run, tmp_path, capsys):
    torch.save({'weights': torch.zeros(2)}, tmp_path / 'other.pt')
    assert main(['import-reference', str(tmp_path / 'other.pt'), '--out', str(tmp_path / 'r')]) == 2
    assert 'is not a clovaai/tunit checkpoint' in capsys.readouterr().err
    assert main(['import-reference', str(tmp_path), '--out', str(tmp_path / 'r')]) == 2
    assert 'has no checkpoint.txt' in capsys.readouterr().err
    ckpt = torch.load(export_reference(paper_run, tmp_path / 'b' / 'model_1.ckpt'), weights_only=True)
    ckpt['C_EMA_state_dict'] = {**ckpt['C_EMA_state_dict'], 'extra.weight': torch.zeros(1)}
    torch.save(ckpt, tmp_path / 'extra.ckpt')
    assert main(['import-reference', str(tmp_path / 'extra.ckpt'), '--out', str(tmp_path / 'r')]) == 2
    assert "C_EMA_state_dict does not fit a reference network of this size: unexpected extra.weight" in capsys.readouterr().err
    assert not (tmp_path / 'r').exists()


def test_export_writes_safetensors_that_translate_reads_and_refuses_what_it_cannot_write(tmp_path, capsys):
    assert main(['export', '--run', 'styled-digits', '--out', str(tmp_path / 'm.safetensors')]) == 0
    _, model = load_run(tmp_path / 'm.safetensors', 'cpu')
    _, shipped = load_run('styled-digits', 'cpu')
    x_src, x_ref = sources()
    assert torch.equal(model.translate(x_src, x_ref), shipped.translate(x_src, x_ref))
    assert torch.allclose(model.domain_styles(), shipped.domain_styles(), equal_nan=True)
    assert model.metrics == shipped.metrics and model.history == shipped.history
    assert main(['export', '--run', 'styled-digits', '--out', str(tmp_path / 'm.pt')]) == 2
    assert 'must end in .safetensors' in capsys.readouterr().err
    assert main(['export', '--run', 'styled-digits', '--out', str(tmp_path / 'm.ckpt')]) == 2   # a packed file: no D
    assert 'is not a run folder' in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"backbone=small \(paper: vgg11\)"): check_reference_layout(TrainConfig.preset('digits'))


class _Payload:
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (os.system, (f'touch {self.marker}',))


@pytest.mark.parametrize('suffix', ['.pt', '.ckpt'])
def test_a_pickle_that_would_run_code_is_refused_and_runs_nothing(tmp_path, capsys, suffix):
    marker, evil = tmp_path / 'ran', tmp_path / f'evil{suffix}'
    with open(evil, 'wb') as f: pickle.dump({'format': 'tunit_nb packed model', 'G_EMA_state_dict': _Payload(marker)}, f, protocol=2)
    for load in (lambda: load_run(evil), lambda: load_checkpoint(evil), lambda: read_reference(evil)):
        with pytest.raises(ValueError, match='cannot be read'): load()
    src = tmp_path / 'x.png'
    from torchvision.utils import save_image
    save_image(torch.rand(3, 32, 32), src)
    assert main(['translate', '--run', str(evil), '--src', str(src), '--ref', str(src), '--out', str(tmp_path / 'o')]) == 2
    assert main(['import-reference', str(evil), '--out', str(tmp_path / 'r')]) == 2
    assert 'cannot be read' in capsys.readouterr().err
    assert not marker.exists()


def test_an_imported_checkpoint_has_every_field_the_trainer_writes(paper_run, tmp_path):
    "import_reference writes a trainer checkpoint itself (it has no data to build a Trainer on): its fields must follow Trainer.state_dict's."
    from tunit_nb.trainer import Trainer
    export_reference(paper_run, tmp_path / 'logs' / 'model_4.ckpt')
    run = import_reference(tmp_path / 'logs', tmp_path / 'run', data='styled-digits')
    imported = Checkpoints(run / 'checkpoints').load()[0]
    cfg, _ = load_run(run, 'cpu')
    written = Trainer(cfg, StyledDigits('train', size=32)).state_dict()
    assert set(imported) == set(written)
    assert set(imported['random']) == set(written['random'])
