"""common.data: the loader, the train/validation split, hashing and the all-or-nothing cache writes."""
import json

import pytest
import torch

from common import data
from common.data import DataError, TensorLoader, check_val_size, split_ordered, train_val_indices


def test_loader_visits_every_sample_once_per_epoch_in_a_new_order():
    x, y = torch.arange(10).float().unsqueeze(1), torch.arange(10)
    loader = TensorLoader(x, y, batch_size=4, shuffle=True, seed=1)
    assert len(loader) == 3  # ceil(10 / 4)
    epochs = [torch.cat([t for _, t in loader]) for _ in range(2)]
    assert all(sorted(e.tolist()) == list(range(10)) for e in epochs)
    assert not torch.equal(epochs[0], epochs[1])  # a new permutation every epoch
    again = TensorLoader(x, y, batch_size=4, shuffle=True, seed=1)
    assert torch.equal(torch.cat([t for _, t in again]), epochs[0])  # the seed fixes the sequence
    for inputs, targets in TensorLoader(x, y, batch_size=4, shuffle=True, seed=1):
        assert torch.equal(inputs[:, 0].long(), targets)  # inputs and targets stay paired


def test_loader_without_shuffle_keeps_the_order_and_a_short_last_batch():
    x, y = torch.arange(10).float(), torch.arange(10)
    assert [t.tolist() for _, t in TensorLoader(x, y, batch_size=4)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_loader_applies_the_batch_transform_and_checks_its_arguments():
    x, y = torch.zeros(6, 2), torch.zeros(6)
    batches = list(TensorLoader(x, y, batch_size=4, transform=lambda a, b: (a + 1, b - 1)))
    assert [len(b) for _, b in batches] == [4, 2] and batches[0][0].eq(1).all() and batches[1][1].eq(-1).all()
    with pytest.raises(ValueError, match=r"inputs \(6\) and targets \(5\)"):
        TensorLoader(x, y[:5], batch_size=2)
    with pytest.raises(ValueError, match="batch_size must be positive, got 0"):
        TensorLoader(x, y, batch_size=0)


def test_validation_split_is_deterministic_disjoint_sorted_and_complete():
    a_train, a_val = train_val_indices(100, 10, seed=3)
    b_train, b_val = train_val_indices(100, 10, seed=3)
    c_train, c_val = train_val_indices(100, 10, seed=4)
    assert torch.equal(a_val, b_val) and torch.equal(a_train, b_train)
    assert not torch.equal(a_val, c_val)
    assert len(a_val) == 10 and sorted(torch.cat([a_train, a_val]).tolist()) == list(range(100))
    assert a_train.tolist() == sorted(a_train.tolist()) and a_val.tolist() == sorted(a_val.tolist())
    with pytest.raises(ValueError, match="got 100"):
        train_val_indices(100, 100, seed=0)


def test_split_ordered_validates_on_the_first_indices_of_the_order():
    train, val = split_ordered(torch.tensor([4, 0, 3, 1, 2]), 2)
    assert val.tolist() == [0, 4] and train.tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match="between 1 and 4, got 0"):
        split_ordered(torch.arange(5), 0)


def test_check_val_size_needs_one_training_image_left():
    check_val_size(16, 15, "somewhere")  # one left: fine
    with pytest.raises(DataError) as err:
        check_val_size(15, 15, "the set in /x")
    assert str(err.value) == ("the set in /x holds 15 images, but 15 of them are held out for validation: "
                              "at least 16 are needed")


def test_stable_hash_ignores_dict_order_and_sees_values():
    assert data.stable_hash({"a": 1, "b": [1, 2]}) == data.stable_hash({"b": [1, 2], "a": 1})
    assert data.stable_hash({"a": 1}) != data.stable_hash({"a": 2})
    assert len(data.stable_hash("x")) == 16 and len(data.stable_hash("x", length=8)) == 8


def test_tensor_fingerprint_sees_shape_and_content():
    t = torch.arange(6)
    assert data.tensor_fingerprint(t) == data.tensor_fingerprint(t.clone())
    assert data.tensor_fingerprint(t) != data.tensor_fingerprint(t.reshape(2, 3))  # same bytes, other shape
    changed = t.clone()
    changed[0] = 7
    assert data.tensor_fingerprint(t) != data.tensor_fingerprint(changed)


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DLIA_CACHE_DIR", str(tmp_path))
    assert data.cache_dir() == tmp_path
    monkeypatch.delenv("DLIA_CACHE_DIR")
    assert data.cache_dir() == data.REPO_ROOT / ".cache"


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "sub" / "entry.json"
    data.atomic_write_json(path, {"v": 1})
    assert json.loads(path.read_text()) == {"v": 1}

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(data.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        data.atomic_write_json(path, {"v": 2})
    assert json.loads(path.read_text()) == {"v": 1}  # the old entry, whole
    assert [p.name for p in path.parent.iterdir()] == ["entry.json"]  # the temporary file removed


def test_shown_path_is_absolute_and_normalised(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert data.shown_path("a/../b") == str(tmp_path / "b")
