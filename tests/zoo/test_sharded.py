"""A sharded Hugging Face checkpoint (model.safetensors.index.json) imports tensor by tensor: the
result computes transformers' logits, and the tensors held at once never approach the model's size
(peak measured by tracking every tensor the reader hands out until it is freed). Wall time and
process peak memory for a 124M-parameter model: bench/zoo_import_export.py.

    python -m pytest tests/zoo/test_sharded.py -q
"""
import os
import weakref

import torch

from foundry.weights import tensors as tensor_files
from foundry.weights.checkpoint import load_model
from foundry.zoo import import_folder
from tests.zoo.hf_models import load_hf, save_tiny


def test_sharded_import_streams_and_matches(tmp_path, monkeypatch):
    folder = save_tiny(tmp_path / "llama", "llama", max_shard_size="50KB")
    shards = [f for f in os.listdir(folder) if f.endswith(".safetensors")]
    assert len(shards) >= 3 and os.path.isfile(os.path.join(folder, "model.safetensors.index.json"))

    live, peak, sizes = [0], [0], []
    original_get = tensor_files.TensorReader.get

    def tracked_get(self, name):
        tensor = original_get(self, name)
        nbytes = tensor.numel() * tensor.element_size()
        sizes.append(nbytes)
        live[0] += nbytes
        peak[0] = max(peak[0], live[0])
        weakref.finalize(tensor, lambda: live.__setitem__(0, live[0] - nbytes))
        return tensor

    monkeypatch.setattr(tensor_files.TensorReader, "get", tracked_get)
    run = import_folder(folder, str(tmp_path / "run"), log=lambda *a: None)["out"]
    monkeypatch.undo()
    total, largest = sum(sizes), max(sizes)
    print(f"sharded import: {len(shards)} shards, {total} bytes read, peak held {peak[0]} bytes "
          f"(largest tensor {largest})")
    assert peak[0] <= 2 * largest < total / 2  # a tensor group in hand, never the model

    model = load_model(run)[0]
    ids = torch.randint(0, 300, (2, 64), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model(ids), load_hf(folder)(ids).logits)
