"""File and folder names with spaces, non-ASCII letters and leading dashes, everywhere."""

from __future__ import annotations

import csv
from pathlib import Path

from tests.cli.test_cli import TINY, run
from tests.conftest import CLASS_COLOURS, make_image


def odd_dataset(root: Path) -> Path:
    for name, colour in (("chat noir", CLASS_COLOURS["cat"]), ("-chien", CLASS_COLOURS["dog"])):
        for i in range(8):
            make_image(root / name / f"-é {i}.png", colour, 100 + i + (50 if name.startswith("-") else 0))
    return root


def test_cli_trains_predicts_and_writes_csv_with_odd_names(tmp_path: Path, capsys) -> None:
    data = odd_dataset(tmp_path / "données d'essai")
    model = tmp_path / "-modèle 1.gcm"
    code, out, err = run(capsys, "train", str(data), *TINY, "--epochs-scale", "0.2", "--out", str(model))
    assert code == 0, out + err
    assert model.is_file()
    leading_dash = data / "-chien" / "-é 0.png"
    table = tmp_path / "résultats -1.csv"
    # "--" ends the options, as with any command-line tool, so a file may start with a dash.
    code, out, err = run(capsys, "predict", "--csv", str(table), str(model), "--", str(data / "chat noir"),
                         str(leading_dash))
    assert code == 0, out + err
    with open(table, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][:4] == ["path", "predicted", "-chien", "chat noir"]
    paths = [r[0] for r in rows[1:]]
    assert paths[-1] == str(leading_dash) and len(paths) == 9
    assert all(Path(p).is_file() for p in paths)


def test_window_opens_and_predicts_odd_names(make_window, tmp_path: Path, qtbot) -> None:
    from tests.gui.conftest import train_briefly, wait_idle
    from tests.gui.test_predict_tab import drop

    data = odd_dataset(tmp_path / "données d'essai")
    window = make_window()
    window.open_dataset(str(data))
    wait_idle(qtbot, window)
    assert window.workspace.data.classes == ("-chien", "chat noir") and window.last_error is None
    train_briefly(qtbot, window)
    window.tabs.setCurrentWidget(window.predict_panel)
    drop(window, [data / "-chien" / "-é 1.png", data / "chat noir"])
    wait_idle(qtbot, window)
    names = [Path(r.path).name for r in window.predict_panel.results()]
    assert names[0] == "-é 1.png" and len(names) == 9
    assert all(r.error is None for r in window.predict_panel.results())
    window.predict_panel.export_predictions_to(str(tmp_path / "-sortie é.csv"))
    with open(tmp_path / "-sortie é.csv", encoding="utf-8", newline="") as f:
        assert [r[0] for r in csv.reader(f)][1] == str(data / "-chien" / "-é 1.png")
