"""User-encoder objectives: losses train, masks hide their targets, causality, pads, InfoNCE, embeddings, BPE."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from graphrec.encoders.model import BehaviourTransformer, num_parameters, train_flops
from graphrec.encoders.objectives import (
    ENCODER_PARAMS,
    OBJECTIVES,
    build_encoder,
    info_nce,
)
from graphrec.encoders.sequences import TIME_FIELDS, BehaviourSequences
from graphrec.encoders.tokenizer import BPETokenizer

TINY = {"dim": 32, "layers": 1, "heads": 2, "dropout": 0.0}
GENRES = ["Action", "Comedy", "Drama", "Horror"]
TITLES = ["Alien", "Heat", "Up", "Jaws", "Fargo", "Brazil", "Clue", "Ran", "Big", "Tron", "Rocky", "Gandhi",
          "Psycho", "Ronin", "Speed", "Shrek", "Dune", "Cars", "Coco", "Babe"]  # fmt: skip


def tiny_sequences(lengths=(3, 5, 8, 12, 4, 6, 2, 9, 7, 10, 5, 11), num_items: int = 20, seed: int = 0,
                   text: bool = True) -> BehaviourSequences:  # fmt: skip
    """Random users over ``num_items`` items with two event types, times, a genre field and titles."""
    rng = np.random.default_rng(seed)
    lengths = np.asarray(lengths, dtype=np.int64)
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    e = int(indptr[-1])
    # Users follow the item order with noise, so next items are predictable and the losses can fall.
    item = np.concatenate([(rng.integers(1, num_items + 1) + np.arange(n)) % num_items + 1 for n in lengths])
    time = np.concatenate([1_700_000_000 + np.sort(rng.integers(0, 10**7, n)) for n in lengths]).astype(np.int64)
    genre = np.concatenate([[0], rng.integers(1, len(GENRES) + 1, num_items)]).astype(np.int64)
    item_text = None
    if text:
        item_text = [""] + [f"{TITLES[t % len(TITLES)]} {t} {GENRES[genre[t] - 1]}" for t in range(1, num_items + 1)]
    return BehaviourSequences(
        name="tiny",
        user_ids=[f"u{k}" for k in range(lengths.size)],
        user_index=np.arange(lengths.size, dtype=np.int64),
        indptr=indptr,
        item=item.astype(np.int64),
        event=rng.integers(1, 3, e).astype(np.int64),
        time=time,
        num_items=num_items,
        item_ids=[f"i{t}" for t in range(1, num_items + 1)],
        item_type=np.zeros(num_items + 1, dtype=np.int64),
        item_index=np.arange(-1, num_items, dtype=np.int64),
        target_types=["item"],
        event_types=["click", "buy"],
        item_cats={"genre": genre},
        cat_vocab={"genre": GENRES},
        item_text=item_text,
    )


def build(name: str, seqs: BehaviourSequences, **extra) -> torch.nn.Module:
    params = dict(TINY)
    if name == "lmrec":
        params.update(max_len=64, vocab_size=400, item_max_len=12)
    else:
        params.update(max_len=8)
        if name != "sasrec":
            params["fields"] = ["event", "time", "category"]
    params.update(extra)
    torch.manual_seed(0)
    return build_encoder(name, seqs, **params)


def first_batch(enc, seqs, split, batch_size: int = 16, seed: int = 0, part: str = "train") -> dict:
    gen = torch.Generator().manual_seed(seed)
    return next(iter(enc.make_batches(seqs, split, batch_size, None, gen, part=part)))


@pytest.fixture(scope="module")
def seqs() -> BehaviourSequences:
    return tiny_sequences()


@pytest.fixture(scope="module")
def split(seqs):
    return seqs.leave_one_out()


# ---------------------------------------------------------------------------- every objective
@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_loss_is_finite_and_falls(name, seqs, split):
    torch.set_num_threads(1)
    enc = build(name, seqs, **({"lm_weight": 1.0} if name == "lmrec" else {}))
    batch = first_batch(enc, seqs, split)
    opt = torch.optim.Adam(enc.parameters(), lr=5e-3)
    losses = []
    for _ in range(30):
        loss = enc.loss(batch)
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3]), losses


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_epoch_covers_each_user_once_and_held_out_parts_work(name, seqs, split):
    enc = build(name, seqs)
    rows = [b["row"] for b in enc.make_batches(seqs, split, 5, generator=torch.Generator().manual_seed(1))]
    first_views = torch.cat([r[: r.numel() // 2] if name == "clue" else r for r in rows]).tolist()
    assert sorted(first_views) == sorted(np.flatnonzero(split.train_end >= enc.min_input).tolist())
    assert first_views != sorted(first_views)  # shuffled by the generator
    enc.eval()
    for part in ("valid", "test"):
        with torch.no_grad():
            losses = [float(enc.loss(b)) for b in enc.make_batches(seqs, split, 5, part=part)]
        assert losses and all(math.isfinite(v) for v in losses)


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_embed_is_deterministic_in_eval_mode(name, seqs, split):
    enc = build(name, seqs, dropout=0.3)
    rows = np.arange(len(seqs))
    batch = enc.user_batches(seqs, rows, split.train_end)
    enc.eval()
    with torch.no_grad():
        a, b = enc.embed(batch), enc.embed(batch)
    assert a.shape == (len(seqs), 32)
    assert torch.equal(a, b)
    enc.train()
    with torch.no_grad():
        assert not torch.equal(enc.embed(batch), a)  # dropout is active in training mode, so the check can fail


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_no_nan_with_padded_prefixes_and_empty_rows(name, seqs):
    enc = build(name, seqs)
    rows = np.arange(len(seqs))
    ends = np.minimum(seqs.lengths, np.arange(len(seqs)) % 4)  # ends 0..3: empty rows and long padded prefixes
    batch = enc.user_batches(seqs, rows, ends)
    if name == "lmrec":  # an empty history is the text "</s>"
        assert (batch["mask"][ends == 0].sum(1) == 1).all()
    else:
        assert (~batch["mask"][ends == 0]).all()
    for train in (True, False):
        enc.train(train)
        h = enc.model(batch)
        assert torch.isfinite(h).all()
        z = enc.embed(batch)
        assert torch.isfinite(z).all()
        h.sum().backward()
        assert all(torch.isfinite(p.grad).all() for p in enc.parameters() if p.grad is not None)
        enc.zero_grad()
    if name in ("sasrec", "clue"):  # [CLS] and "</s>" are never empty; the others pool an empty history to zero
        assert torch.equal(enc.embed(batch)[ends == 0], torch.zeros(int((ends == 0).sum()), 32))


def test_scores_cover_every_item_and_pad_is_minus_inf(seqs, split):
    for name in ("sasrec", "lmrec"):
        enc = build(name, seqs).eval()
        with torch.no_grad():
            s = enc.scores(enc.user_batches(seqs, [0, 3], split.train_end[[0, 3]]))
            assert enc.item_embeddings().shape == (seqs.num_items + 1, 32)
        assert s.shape == (2, seqs.num_items + 1)
        assert torch.isinf(s[:, 0]).all() and torch.isfinite(s[:, 1:]).all()
    for name in ("clue", "shopperbert"):
        with pytest.raises(NotImplementedError):
            build(name, seqs).scores({})


# ---------------------------------------------------------------------------- sasrec
def test_sasrec_is_causal(seqs):
    enc = build("sasrec", seqs).eval()
    batch = enc.user_batches(seqs, [3, 9], seqs.lengths[[3, 9]])
    with torch.no_grad():
        before = enc.model(batch)
        changed = {k: v.clone() for k, v in batch.items()}
        changed["item"][:, -1] = changed["item"][:, -1] % seqs.num_items + 1  # the most recent behaviour
        after = enc.model(changed)
    assert torch.allclose(before[:, :-1], after[:, :-1], atol=1e-6)
    assert not torch.allclose(before[:, -1], after[:, -1], atol=1e-4)


def test_sasrec_targets_are_the_next_items_and_held_out_only_the_last(seqs, split):
    enc = build("sasrec", seqs)
    batch = first_batch(enc, seqs, split, batch_size=len(seqs))
    for b, k in enumerate(batch["row"].tolist()):
        seq = seqs[k][: split.train_end[k]][-(enc.max_len + 1):]
        n = len(seq) - 1
        assert batch["item"][b, -n:].tolist() == seq[:-1].tolist()
        assert batch["target"][b, -n:].tolist() == seq[1:].tolist()
        assert (batch["target"][b, :-n] == 0).all()
    test = first_batch(enc, seqs, split, batch_size=len(seqs), part="test")
    for b, k in enumerate(test["row"].tolist()):
        pos = split.test_pos[k]
        assert test["target"][b, -1] == seqs[k][pos] and (test["target"][b, :-1] == 0).all()
        assert test["item"][b, -1] == seqs[k][pos - 1]  # the input stops before the held-out behaviour


# ---------------------------------------------------------------------------- shopperbert
def test_shopperbert_masks_every_field_of_a_masked_behaviour(seqs, split):
    enc = build("shopperbert", seqs)
    batch = first_batch(enc, seqs, split, batch_size=len(seqs))
    sel = batch["masked"]
    assert sel.any(1).all()  # at least one per sequence
    assert not (sel & ~batch["mask"]).any()
    for key in ["event", *TIME_FIELDS, "cat:genre"]:
        assert (batch[key][sel] == 0).all(), key
        assert (batch[f"label:{key}"][sel] > 0).all(), key  # the labels hold what the input hides
    assert (batch["label:item"][sel] > 0).all() and (batch["label:item"][~sel] == 0).all()
    held = first_batch(enc, seqs, split, batch_size=len(seqs), part="valid")
    assert held["masked"][:, -1].all() and not held["masked"][:, :-1].any()
    assert (held["item"][:, -1] == enc.model.mask_token).all()


def test_shopperbert_item_rule_is_80_10_10():
    big = tiny_sequences(lengths=[42] * 100, num_items=50, seed=3)
    enc = build("shopperbert", big, max_len=40)  # long enough that "at least one per row" barely adds masks
    batch = first_batch(enc, big, big.leave_one_out(), batch_size=100)
    sel = batch["masked"]
    shown, truth = batch["item"][sel], batch["label:item"][sel]
    masked = (shown == enc.model.mask_token).float().mean()
    kept = (shown == truth).float().mean()  # kept + random draws that hit the target (1 / 50 of 10%)
    assert abs(float(masked) - 0.8) < 0.05 and abs(float(kept) - 0.1) < 0.04
    assert abs(float(sel.sum()) / float(batch["mask"].sum()) - 0.15) < 0.03


def test_shopperbert_cannot_see_a_masked_target(seqs, split):
    enc = build("shopperbert", seqs).eval()
    batch = first_batch(enc, seqs, split, seed=5)
    hit = (batch["masked"] & (batch["item"] == enc.model.mask_token)).nonzero()[0]
    b, col = int(hit[0]), int(hit[1])
    k = int(batch["row"][b])
    end = split.train_end[k]
    event = seqs.indptr[k] + end - (batch["item"].shape[1] - col)  # the behaviour at that column (left padding)
    assert seqs.item[event] == batch["label:item"][b, col]
    other = tiny_sequences()
    other.item[event] = other.item[event] % seqs.num_items + 1  # another item, so another genre may follow
    other.event[event] = 3 - other.event[event]
    other.time[event] += 86_400 * 40 + 3_600 * 5
    changed = first_batch(enc, other, other.leave_one_out(), seed=5)
    assert changed["label:item"][b, col] != batch["label:item"][b, col]  # the target did change
    inputs = ["item", "mask", "event", *TIME_FIELDS, "cat:genre"]
    for key in inputs:
        assert torch.equal(batch[key], changed[key]), key
    with torch.no_grad():
        h1, h2 = enc.model(batch)[b, 1 + col], enc.model(changed)[b, 1 + col]
        items = enc.model.item_vectors()[1:]
    assert torch.equal(h1 @ items.T, h2 @ items.T)


# ---------------------------------------------------------------------------- clue
def test_info_nce_positives_are_the_diagonal():
    z = torch.eye(6)[:, :6] * 3
    low = info_nce(z, z, 0.1)
    assert float(low) < 1e-3
    assert float(info_nce(z, z.roll(1, 0), 0.1)) > 10  # the same vectors paired off the diagonal
    z1, z2 = torch.randn(5, 4), torch.randn(5, 4)
    s = F.normalize(z1, dim=1) @ F.normalize(z2, dim=1).T / 0.5
    t = torch.arange(5)
    expect = 0.5 * (F.cross_entropy(s, t) + F.cross_entropy(s.T, t))
    assert torch.allclose(info_nce(z1, z2, 0.5), expect)


def test_info_nce_leaves_a_duplicated_user_out_of_its_own_negatives():
    z = torch.eye(4)
    z = torch.cat([z, z[:1]])  # user 0 twice
    groups = torch.tensor([0, 1, 2, 3, 0])
    # unhandled, each copy of user 0 is the other's equally close negative: log 2 for 2 of the 5 rows
    assert abs(float(info_nce(z, z, 0.1)) - 0.4 * math.log(2)) < 1e-3
    assert float(info_nce(z, z, 0.1, groups)) < 1e-3


def test_clue_views_are_crops_of_the_two_halves_or_augmentations(seqs, split):
    enc = build("clue", seqs)
    batch = first_batch(enc, seqs, split, batch_size=len(seqs))
    rows = batch["row"]
    n = rows.numel() // 2
    assert torch.equal(rows[:n], rows[n:]) and rows[:n].unique().numel() == n
    for b, k in enumerate(rows[:n].tolist()):
        seq = seqs[k][: split.train_end[k]]
        v1 = batch["item"][b][batch["mask"][b]].tolist()
        v2 = batch["item"][n + b][batch["mask"][n + b]].tolist()
        if len(seq) >= 4:  # a contiguous crop of half to all of each half (never a behaviour of the other half)
            h = len(seq) // 2
            for v, part in ((v1, seq[:h][-enc.max_len:].tolist()), (v2, seq[h:][-enc.max_len:].tolist())):
                assert (len(part) + 1) // 2 <= len(v) <= len(part)
                assert any(part[i:i + len(v)] == v for i in range(len(part) - len(v) + 1))
        else:  # crop / mask / reorder of the same short sequence
            for v in (v1, v2):
                assert 1 <= len(v) <= len(seq)
                assert set(v) <= set(seq.tolist()) | {enc.model.mask_token}


def test_clue_embed_is_the_mean_pool_without_projection(seqs, split):
    enc = build("clue", seqs).eval()
    batch = enc.user_batches(seqs, [1, 2], split.train_end[[1, 2]])
    with torch.no_grad():
        h = enc.model(batch)
        m = batch["mask"][..., None].float()
        assert torch.allclose(enc.embed(batch), (h * m).sum(1) / m.sum(1), atol=1e-6)


# ---------------------------------------------------------------------------- lmrec
def test_bpe_round_trip_and_json():
    tok = BPETokenizer.train(["Toy Story (1995) Animation|Comedy", "click", "Heat (1995) Action"] * 5, vocab_size=300)
    text = "click Toy Story (1995) ; buy Brazil – Ünïcödé ☃ </s>"
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert ids[-1] == tok.eos_id == 1 and tok.encode("<pad>") == [0]
    again = BPETokenizer.from_json(tok.to_json())
    assert again.encode(text) == ids and again.vocab_size == tok.vocab_size
    with pytest.raises(ValueError, match="vocab_size"):
        BPETokenizer.train(["a"], vocab_size=100)


def test_lmrec_history_ends_in_eos_and_user_vector_is_its_state(seqs, split):
    enc = build("lmrec", seqs, max_len=24)
    batch = first_batch(enc, seqs, split)
    for key in ("", "pos:", "neg:"):
        item, mask = batch[f"{key}item"], batch[f"{key}mask"]
        assert (item[:, -1] == enc.tokenizer.eos_id).all() and mask[:, -1].all(), key
        assert ((item == enc.tokenizer.eos_id).sum(1) == 1).all(), key  # exactly one </s>: nothing after it
    assert batch["item"].shape[1] == 24  # long histories are cut to their most recent tokens
    ub = enc.user_batches(seqs, [4, 4], [1, 3])
    short, cut = (enc.tokenizer.decode(ub["item"][b][ub["mask"][b]].tolist()) for b in (0, 1))
    assert short == seqs.text_view(4, 1)
    long = seqs.text_view(4, 3)
    assert long.endswith(cut) and len(cut) < len(long) and ub["mask"][1].all()  # the most recent 24 tokens
    enc.eval()
    with torch.no_grad():
        h = enc.model(ub)
        assert torch.equal(enc.embed(ub), h[:, -1])  # the </s> state


def test_lmrec_positive_follows_the_prefix_and_negatives_differ(seqs, split):
    enc = build("lmrec", seqs, num_negatives=3)
    batch = first_batch(enc, seqs, split, batch_size=len(seqs))
    rows = batch["row"].tolist()
    table = enc.item_tokens
    for b, k in enumerate(rows):
        hist = enc.tokenizer.decode(batch["item"][b][batch["mask"][b]].tolist())
        seq = seqs[k]
        prefixes = [p for p in range(1, split.train_end[k]) if seqs.text_view(k, p).endswith(hist)]
        assert prefixes, (k, hist)
        pos_tokens = batch["pos:item"][b][batch["pos:mask"][b]].tolist()
        assert any(table[seq[p]][table[seq[p]] > 0].tolist() == pos_tokens for p in prefixes)
        negs = batch["neg:item"][3 * b: 3 * b + 3]
        for neg in negs:
            assert neg[neg > 0].tolist() != pos_tokens


def test_lmrec_needs_item_text():
    with pytest.raises(ValueError, match="no item text"):
        build("lmrec", tiny_sequences(text=False))
    with pytest.raises(ValueError, match="do not apply"):
        build("lmrec", tiny_sequences(), fields=["event"])


# ---------------------------------------------------------------------------- building, sizes
def test_build_encoder_checks_names_and_params(seqs):
    with pytest.raises(ValueError, match="unknown encoder objective"):
        build_encoder("bert4rec", seqs)
    with pytest.raises(ValueError, match="unknown parameter"):
        build_encoder("sasrec", seqs, temperature=0.1)
    with pytest.raises(ValueError, match="unknown input field group"):
        build_encoder("clue", seqs, fields=["colour"])
    with pytest.raises(ValueError, match="pool"):
        build_encoder("sasrec", seqs, pool="cls")
    enc = build_encoder("shopperbert", seqs, pool=None, dim=16, heads=2)
    assert enc.pool_how == "cls" and enc.params["mask_prob"] == ENCODER_PARAMS["shopperbert"]["mask_prob"]
    assert set(enc.model.fields) == {"event", *TIME_FIELDS, "cat:genre"}
    assert set(enc.heads) == set(enc.model.fields)  # every field has two or more values here
    lm = build_encoder("lmrec", seqs, vocab_size=300, fields=[], text_vectors=None)
    same = build_encoder("lmrec", seqs, tokenizer_json=lm.tokenizer_json)
    assert same.tokenizer.vocab_size == lm.tokenizer.vocab_size == lm.params["vocab_size"]


def test_text_vectors_are_frozen_and_shift_the_item_inputs(seqs):
    tv = torch.randn(seqs.num_items + 1, 5)
    tv[0] = 0
    enc = build("sasrec", seqs, text_vectors=tv)
    plain = build("sasrec", seqs)
    assert "model.text_vectors" in enc.state_dict() and not any(p is enc.model.text_vectors for p in enc.parameters())
    assert torch.equal(enc.model.item_vectors()[0], torch.zeros(32))
    assert not torch.allclose(enc.model.item_vectors()[1:-1], plain.model.item_vectors()[1:-1])
    with pytest.raises(ValueError, match="text_vectors"):
        BehaviourTransformer(seqs.num_items, text_vectors=torch.zeros(4, 5))


def test_parameter_count_and_flops():
    m = BehaviourTransformer(100, dim=16, layers=1, heads=2, max_len=10, fields={"event": 3})
    total = num_parameters(m)
    emb = (102 + 10 + 4) * 16
    assert num_parameters(m, non_embedding=True) == total - emb
    assert total == sum(p.numel() for p in m.parameters())
    assert train_flops(m, 1000) == 6 * (total - emb) * 1000
    assert train_flops(m, 1000, non_embedding=False) == 6 * total * 1000


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_a_users_embedding_does_not_depend_on_the_rest_of_its_batch(name, seqs, split):
    enc = build(name, seqs).eval()
    rows = np.arange(len(seqs))
    with torch.no_grad():
        together = enc.embed(enc.user_batches(seqs, rows, split.train_end))
        alone = enc.embed(enc.user_batches(seqs, [6], split.train_end[[6]]))  # the shortest row: a narrow batch
    assert enc.user_batches(seqs, [6], split.train_end[[6]])["item"].shape[1] < 8 or name == "lmrec"
    assert torch.allclose(together[6], alone[0], atol=1e-5)
