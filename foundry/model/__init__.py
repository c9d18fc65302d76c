"""The model: the GPT (gpt.py), the component contract (protocols.py), the components (modules/).

    from foundry.model.gpt import GPT
    model = GPT(cfg.model)          # cfg.model.vocab_size set; see gpt.py
"""
