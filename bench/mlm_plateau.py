"""Is the slow start of `rs pretrain` a bug? The same encoders on a corpus whose structure is trivial.

A synthetic corpus: 300 words, each followed by one of 2 fixed successors, so a masked word is almost
determined by its neighbours (the best MLM loss is below ln 2 = 0.69, the unigram loss ln 300 = 5.70). A
masked language model must learn to attend to the neighbouring positions to get below 5.7. Compared:
Hugging Face's ELECTRA generator (post-LayerNorm, what `rs pretrain` trains) and PyTorch's
TransformerEncoder, post-LN and pre-LN, 4 layers × 128, batch 32, AdamW with 50 warmup steps.

    python bench/mlm_plateau.py --model electra --length 128 --steps 300
    python bench/mlm_plateau.py --model electra --length 16 --steps 1500 --lr 1e-3

Prints the MLM loss every 50 steps.
"""

from __future__ import annotations

import argparse
import random
import time

import torch
import torch.nn.functional as F

WORDS, SPECIAL, MASK = 300, 5, 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["electra", "post-ln", "pre-ln"], default="electra")
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--hidden", type=int, default=128)
    o = parser.parse_args()

    torch.manual_seed(0)
    rnd = random.Random(0)
    successors = {w: rnd.sample(range(WORDS), 2) for w in range(WORDS)}

    def sequence() -> list[int]:
        ids, word = [1], rnd.randrange(WORDS)
        while len(ids) < o.length:
            ids.append(word + SPECIAL)
            word = rnd.choice(successors[word])
        return ids

    vocab, heads = WORDS + SPECIAL, max(1, o.hidden // 64)
    if o.model == "electra":
        from transformers import ElectraConfig, ElectraForMaskedLM

        config = ElectraConfig(
            vocab_size=vocab,
            embedding_size=128,
            hidden_size=o.hidden,
            num_hidden_layers=4,
            num_attention_heads=heads,
            intermediate_size=4 * o.hidden,
            max_position_embeddings=max(128, o.length),
        )
        electra = ElectraForMaskedLM(config)
        electra.set_attn_implementation("eager")
        model, forward = electra, lambda ids: electra(input_ids=ids).logits
    else:

        class Encoder(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.words = torch.nn.Embedding(vocab, o.hidden)
                self.positions = torch.nn.Embedding(o.length, o.hidden)
                layer = torch.nn.TransformerEncoderLayer(
                    o.hidden, heads, 4 * o.hidden, 0.1, batch_first=True, norm_first=o.model == "pre-ln"
                )
                self.encoder = torch.nn.TransformerEncoder(layer, 4, enable_nested_tensor=False)
                self.output = torch.nn.Linear(o.hidden, vocab)

            def forward(self, ids):
                return self.output(self.encoder(self.words(ids) + self.positions.weight[: ids.shape[1]]))

        model = forward = Encoder()
    optimizer = torch.optim.AdamW(model.parameters(), lr=o.lr, weight_decay=0.01, eps=1e-6)
    started = time.time()
    for step in range(o.steps):
        ids = torch.tensor([sequence() for _ in range(32)])
        masked = torch.rand(ids.shape) < 0.15
        masked[:, 0] = False
        for group in optimizer.param_groups:
            group["lr"] = o.lr * min(1.0, (step + 1) / 50)
        loss = F.cross_entropy(forward(ids.masked_fill(masked, MASK))[masked], ids[masked])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 50 == 0 or step == o.steps - 1:
            seconds = time.time() - started
            print(f"{o.model} length {o.length} lr {o.lr:g} step {step}: loss {loss.item():.3f} ({seconds:.0f}s)")


if __name__ == "__main__":
    main()
