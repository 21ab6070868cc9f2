"KeyQueue across processes: two CPU processes (gloo) must end up with the same queue holding both ranks' keys."
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tunit_nb.contrastive import KeyQueue, contrastive_loss, gather_from_all_ranks


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _keys(rank, step, n, dim=4):
    "Keys that name their origin: value = 100 * rank + 10 * step + row."
    return (100 * rank + 10 * step + torch.arange(n, dtype=torch.float))[:, None].expand(n, dim).contiguous()


def _worker(rank, world, port, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=world)
    try:
        queue = KeyQueue(capacity=10, dim=4)
        queue.push(_keys(rank, 0, 2))                    # 2 keys per rank: 4 in all
        queue.push(_keys(rank, 1, 3))                    # 3 per rank: 10 in all, full
        full = queue.keys.clone()
        queue.push(_keys(rank, 2, 1 + rank))             # unequal sizes: 1 from rank 0, 2 from rank 1; wraps
        ragged = gather_from_all_ranks(_keys(rank, 3, rank))  # rank 0 contributes no rows at all
        loss = contrastive_loss(torch.ones(2, 4), torch.ones(2, 4), queue)
        torch.save(dict(full=full, wrapped=queue.keys.clone(), ragged=ragged, n=len(queue), loss=loss),
                   f'{out_dir}/rank{rank}.pt')
    finally:
        dist.destroy_process_group()


def test_queue_holds_keys_of_all_ranks_in_the_same_order(tmp_path):
    world = 2
    mp.spawn(_worker, args=(world, _free_port(), str(tmp_path)), nprocs=world, join=True)
    results = [torch.load(tmp_path / f'rank{r}.pt') for r in range(world)]
    expected_full = torch.cat([_keys(0, 0, 2), _keys(1, 0, 2), _keys(0, 1, 3), _keys(1, 1, 3)])
    expected_wrapped = torch.cat([expected_full[3:], _keys(0, 2, 1), _keys(1, 2, 2)])  # oldest 3 overwritten
    for r in results:
        assert torch.equal(r['full'], expected_full)
        assert torch.equal(r['wrapped'], expected_wrapped)
        assert torch.equal(r['ragged'], _keys(1, 3, 1))
        assert r['n'] == 10
    assert torch.equal(results[0]['loss'], results[1]['loss'])


def test_gather_is_identity_without_distributed():
    t = torch.randn(3, 2)
    assert gather_from_all_ranks(t) is t
