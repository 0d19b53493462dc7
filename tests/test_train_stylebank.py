import json

from styletransfer.stylebank import StyleBank, StyleBankAutoEncoder, load_bank, read_thumbnail
from training import learn_bank, train_stylebank
from tests.conftest import gradient_image


def make_data(root):
    for sub, n, size in (("content", 3, (80, 64)), ("styles", 2, (96, 72))):
        (root / sub).mkdir(parents=True)
        for i in range(n):
            gradient_image(*size).rotate(90 * i).save(root / sub / f"{sub}{i}.png")


def test_joint_training_resumes_exports_and_banks_fit_the_exported_autoencoder(tmp_path, tiny_vgg, monkeypatch,
                                                                               capsys):
    make_data(tmp_path / "data")
    monkeypatch.setattr(train_stylebank, "load_vgg16", lambda: tiny_vgg)
    common = ["--data", str(tmp_path / "data"), "--run", str(tmp_path / "run"), "--crop", "32", "--batch", "2",
              "--channels", "4", "8", "16", "--checkpoint-every", "2", "--log-every", "1", "--warmup", "1",
              "--spike-factor", "1e9"]
    assert train_stylebank.main(common + ["--iterations", "2"]) == 0
    assert train_stylebank.main(common + ["--iterations", "3", "--export", str(tmp_path / "out"),
                                          "--rename", "styles1=swirls"]) == 0
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in log] == [1, 2, 3]
    assert all(r["scale"] > 0 and r["psnr"] > 0 for r in log)
    ae = StyleBankAutoEncoder.from_pretrained(tmp_path / "out" / "autoencoder.safetensors")
    banks = sorted((tmp_path / "out" / "banks").glob("*.safetensors"))
    assert [p.stem for p in banks] == ["styles0", "swirls"]
    bank = load_bank(banks[1], ae)
    assert bank.name == "swirls" and read_thumbnail(banks[1]) is not None
    assert StyleBank.extra_metadata(banks[1])["style_image"] == "styles1"
    saved = StyleBankAutoEncoder.extra_metadata(tmp_path / "out" / "autoencoder.safetensors")
    assert saved["styles"] == ["styles0", "swirls"]

    monkeypatch.setattr(learn_bank, "load_vgg16", lambda: tiny_vgg)
    out = tmp_path / "new.safetensors"
    rc = learn_bank.main([str(tmp_path / "data" / "styles" / "styles1.png"), "--name", "fresh", "-o", str(out),
                          "--autoencoder", str(tmp_path / "out" / "autoencoder.safetensors"),
                          "--contents", str(tmp_path / "data" / "content"),
                          "--steps", "2", "--size", "32", "--batch", "1"])
    assert rc == 0 and load_bank(out, ae).name == "fresh"
    rc = learn_bank.main([str(tmp_path / "data" / "styles" / "styles1.png"), "--name", "bad name", "-o", str(out),
                          "--autoencoder", str(tmp_path / "out" / "autoencoder.safetensors"),
                          "--contents", str(tmp_path / "data" / "content"), "--steps", "2", "--size", "32"])
    assert rc == 2
    capsys.readouterr()
    for output, message in ((tmp_path / "missing" / "b.safetensors", "there is no folder"),
                            (tmp_path / "b.png", "written as .safetensors")):  # refused before the photos are read
        rc = learn_bank.main([str(tmp_path / "data" / "styles" / "styles1.png"), "--name", "fresh", "-o", str(output),
                              "--contents", str(tmp_path / "nowhere")])
        assert rc == 2 and message in capsys.readouterr().err


def test_spike_detector_rolls_back_a_bounded_number_of_times(tmp_path, tiny_vgg, monkeypatch):
    make_data(tmp_path / "data")
    monkeypatch.setattr(train_stylebank, "load_vgg16", lambda: tiny_vgg)
    args = ["--data", str(tmp_path / "data"), "--run", str(tmp_path / "run"), "--crop", "32", "--batch", "2",
            "--channels", "4", "8", "16", "--checkpoint-every", "1", "--log-every", "1", "--warmup", "0",
            "--spike-factor", "1e-9", "--iterations", "3"]  # every window counts as a spike
    assert train_stylebank.main(args) == 0
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    rollbacks = [r for r in log if r.get("event") == "rollback"]
    assert 0 < len(rollbacks) <= 2 * train_stylebank.MAX_ROLLBACKS
    assert log[-1]["iteration"] == 3 and "event" not in log[-1]
