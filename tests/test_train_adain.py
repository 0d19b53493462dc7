import json

import pytest
import torch

from styletransfer.adain import STYLE_LAYERS, AdaINDecoder, DecoderConfig
from styletransfer.ops import calc_mean_std
from training import train_adain
from tests.conftest import gradient_image, image_size


def test_tiny_decoder_loss_falls(tiny_vgg):
    torch.manual_seed(0)
    decoder = AdaINDecoder(DecoderConfig(widths=(8, 8, 8, 8)), precision="fp32")
    fc = tiny_vgg(torch.rand(4, 3, 64, 64), ["relu4_1"])["relu4_1"]
    feats = tiny_vgg(torch.rand(4, 3, 64, 64), STYLE_LAYERS)
    targets = {layer: tuple(t.flatten(1) for t in calc_mean_std(feats[layer])) for layer in STYLE_LAYERS}
    optimizer = torch.optim.Adam(decoder.parameters(), lr=2e-3)
    losses = []
    for _ in range(40):
        content, style = train_adain.adain_losses(decoder, tiny_vgg, fc, targets)
        loss = content + 1.0 * style
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_training_script_checkpoints_resumes_and_exports(tmp_path, tiny_vgg, monkeypatch):
    for sub, n, size in (("content", 3, (80, 64)), ("styles", 2, (96, 72))):
        (tmp_path / "data" / sub).mkdir(parents=True)
        for i in range(n):
            gradient_image(*size).rotate(90 * i).save(tmp_path / "data" / sub / f"{i}.png")
    (tmp_path / "data" / "content" / "broken.jpg").write_bytes(b"not an image")
    monkeypatch.setattr(train_adain, "load_normalized_vgg", lambda: tiny_vgg)
    common = ["--data", str(tmp_path / "data"), "--run", str(tmp_path / "run"), "--crop", "32", "--batch", "2",
              "--style-crops", "2", "--checkpoint-every", "2", "--widths", "8", "8", "8", "8"]
    pair = [str(tmp_path / "data" / "content" / "0.png"), str(tmp_path / "data" / "styles" / "1.png")]
    assert train_adain.main(common + ["--steps", "2", "--preview", *pair]) == 0
    assert image_size(tmp_path / "run" / "preview_000002.jpg") == (256, 256)  # one pair, 256 px
    first = (tmp_path / "run" / "checkpoint.safetensors").read_bytes()
    out = tmp_path / "exported.safetensors"
    assert train_adain.main(common + ["--steps", "4", "--export", str(out)]) == 0
    assert (tmp_path / "run" / "checkpoint.safetensors").read_bytes() != first
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 4]
    decoder = AdaINDecoder.from_pretrained(out)
    meta = AdaINDecoder.extra_metadata(out)
    assert meta["steps"] == 4 and meta["style_weight"] == 2.0 and decoder.config.widths == (8, 8, 8, 8)
    assert decoder.layers[1].weight.dtype == torch.float32


def test_a_run_can_start_from_a_saved_decoder(tmp_path, tiny_vgg, monkeypatch, capsys):
    for sub, n in (("content", 2), ("styles", 2)):
        (tmp_path / "data" / sub).mkdir(parents=True)
        for i in range(n):
            gradient_image(80, 64).rotate(90 * i).save(tmp_path / "data" / sub / f"{i}.png")
    monkeypatch.setattr(train_adain, "load_normalized_vgg", lambda: tiny_vgg)
    common = ["--data", str(tmp_path / "data"), "--crop", "32", "--batch", "2", "--style-crops", "2",
              "--checkpoint-every", "2", "--widths", "8", "8", "8", "8"]
    first = tmp_path / "first.safetensors"
    assert train_adain.main(common + ["--run", str(tmp_path / "a"), "--steps", "2", "--export", str(first)]) == 0
    more = tmp_path / "more.safetensors"
    assert train_adain.main(common + ["--run", str(tmp_path / "b"), "--steps", "4", "--init", str(first),
                                      "--export", str(more)]) == 0
    log = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [4]  # steps 3 and 4: the saved decoder's 2 count on
    meta = AdaINDecoder.extra_metadata(more)
    assert meta["steps"] == 4 and meta["continued_from"] == "first.safetensors at step 2"
    assert meta["train_seconds"] >= AdaINDecoder.extra_metadata(first)["train_seconds"]
    start = AdaINDecoder.from_pretrained(first).state_dict()
    end = AdaINDecoder.from_pretrained(more).state_dict()
    assert any(not torch.equal(start[k], end[k]) for k in start)  # it trained on from there
    # a decoder of another shape, or one trained as far as asked already: a clear error, not a traceback
    for extra, message in ((["--widths", "16", "8", "8", "8"], "not DecoderConfig"),
                           (["--steps", "2"], "trained 2 steps already")):
        with pytest.raises(SystemExit) as stopped:
            train_adain.main(common + ["--run", str(tmp_path / "c"), "--steps", "3", "--init", str(first)] + extra)
        assert stopped.value.code == 2 and message in capsys.readouterr().err
