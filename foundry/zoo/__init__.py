"""The model zoo: Hugging Face Llama 3, Mistral, Qwen2 and GPT-2 checkpoints in and out of Foundry.

    foundry zoo list                              # presets: named shapes, params, FLOPs/token
    foundry zoo import HF_DIR --out RUN           # a Hugging Face folder -> a Foundry checkpoint
    foundry zoo export RUN --out HF_DIR           # and back (--lora merge|adapter for LoRA runs)

The Python API (what merging and other weight-space tools build on):

    from foundry.zoo import HFCheckpoint, import_folder, export_run, model_specs, FAMILIES, PRESETS
    hf = HFCheckpoint("hf/qwen")                  # config.json read, family chosen; no tensor loaded
    hf.family, hf.model_keys, hf.tokenizer()      # the family's tables, Foundry's model keys, HFTokenizer
    cfg = catalog.from_dict({"model": hf.model_keys, "budget": {"steps": 1}})
    for name, tensor in hf.foundry_tensors(cfg.model): ...   # Foundry names, one tensor at a time
    hf.reader                                      # foundry.weights.tensors.TensorReader: the raw HF tensors

    # writing Hugging Face tensors from Foundry ones, streamed (get(name) -> tensor, read on demand):
    from foundry.zoo.family import hf_specs, to_hf_tensors
    from foundry.weights.tensors import write_sharded
    plan = hf_specs(family, n_layer, tied, {foundry name: (dtype, shape)})
    write_sharded(folder, plan, to_hf_tensors(family, n_layer, tied, get), max_shard_bytes)

Files: family.py (Rule, Family, the engine that applies any table), one table file per family
(llama.py, mistral.py, qwen2.py, gpt2.py), families.py (FAMILIES: the registry, chosen from
config.json's architectures / model_type; config conversion both ways), hf.py (reading and
import), export.py, adapter.py (peft adapters), presets.py (PRESETS: `model.preset`), cli.py.
"""
from foundry.zoo.export import export_run
from foundry.zoo.families import FAMILIES, exportable_family, family_of, foundry_model_keys, hf_config_of
from foundry.zoo.hf import HFCheckpoint, import_folder, model_specs
from foundry.zoo.presets import PRESETS

__all__ = ["FAMILIES", "PRESETS", "HFCheckpoint", "export_run", "exportable_family", "family_of",
           "foundry_model_keys", "hf_config_of", "import_folder", "model_specs"]
