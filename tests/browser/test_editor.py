"""The console's visual editor (issue 13, item 5) in a real headless Chromium, offline: an admin builds a
workflow from the palette (a drag onto the canvas, "Add" buttons, a port drag and the keyboard's "Connect
to"), saves a draft half-way and sees the server's problem on the node and the field, completes it, saves
version 1, runs it and watches the execution reach "completed" without a reload. Also: import and export of a
definition as a file, the JSON view, a viewer's read-only editor, and a save refused (412) because someone
else saved meanwhile."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.helpers import member, person, screenshot, sign_in, still_the_same_document
from tests.harness import Api
from tests.integration.test_control import create

pytestmark = pytest.mark.usefixtures("live_db")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def node(selector_id: str, page: Page) -> Any:
    return page.locator(f'svg.editor-canvas g.node[data-node-id="{selector_id}"]')


def drag_by(page: Page, target: Locator, dx: float, dy: float) -> None:
    """Press on ``target``'s centre, move by (dx, dy) in a few steps, release: a pointer drag."""
    box = target.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx, y + dy, steps=5)
    page.mouse.up()


def quick(workflow_id: str, condition: str | None = "value > 1") -> dict[str, Any]:
    """numbers -> filter -> console: runs inline in moments; no condition makes it a draft."""
    config = {"condition": condition} if condition else {}
    return {
        "id": workflow_id,
        "name": "Quick",
        "nodes": [
            {"id": "nums", "type": "source", "nodeType": "sequence.numbers", "config": {"end": 3}},
            {"id": "keep", "type": "transform", "nodeType": "filter", "config": config},
            {"id": "out", "type": "sink", "nodeType": "console.log", "config": {}},
        ],
        "edges": [
            {"id": "e1", "source": "nums", "target": "keep"},
            {"id": "e2", "source": "keep", "target": "out"},
        ],
    }


def test_an_admin_builds_a_workflow_from_the_palette_saves_a_draft_then_runs_it_to_completed(
    page: Page, api: Api, uid: str
) -> None:
    workflow_id = f"editor-{uid}"
    page.set_viewport_size({"width": 1540, "height": 900})  # room for four nodes in a row
    username, password = person()
    sign_in(page, username, password, path="/ui/editor")
    expect(page.get_by_role("heading", name="New workflow")).to_be_visible()
    page.get_by_label("Workflow id").fill(workflow_id)
    page.get_by_label("Workflow name").fill("Built in the editor")

    # a source dragged from the palette onto the canvas lands where it was dropped
    canvas = page.locator("svg.editor-canvas")
    page.locator('.palette-item[data-category="source"][data-node-type="sequence.numbers"]').drag_to(
        canvas, source_position={"x": 12, "y": 10}, target_position={"x": 130, "y": 90}
    )
    source = node("sequence_numbers", page)
    expect(source).to_have_attribute("transform", "translate(40,60)")
    expect(source.locator("text.category")).to_have_text("source · sequence.numbers")
    expect(source.locator("text.label")).to_have_text("Number sequence")
    # the keyboard's way: the palette's buttons
    transforms = page.locator(".palette-group.category-transform")
    transforms.get_by_role("button", name="Add Filter", exact=True).click()
    expect(node("filter", page)).to_have_attribute("transform", "translate(250,20)")
    page.locator(".palette-group.category-sink").get_by_role(
        "button", name="Add Console log", exact=True
    ).click()
    expect(node("console_log", page)).to_have_attribute("transform", "translate(470,20)")
    transforms.get_by_role("button", name="Add Delay", exact=True).click()
    expect(node("delay", page)).to_have_attribute("transform", "translate(250,120)")  # below the filter
    expect(page.locator("svg.editor-canvas g.node")).to_have_count(4)
    # nodes move by dragging them: the sink to the right, the delay into the gap
    drag_by(page, node("console_log", page), 220, 0)
    expect(node("console_log", page)).to_have_attribute("transform", "translate(690,20)")
    drag_by(page, node("delay", page), 220, -100)
    expect(node("delay", page)).to_have_attribute("transform", "translate(470,20)")

    # connect by dragging an output port onto the next node, and by the node form's "Connect to"
    source.locator(".port-out").drag_to(node("filter", page))
    edges = page.locator("svg.editor-canvas g.edge")
    expect(edges.and_(page.locator('[aria-label="Edge e1: sequence_numbers to filter"]'))).to_have_count(1)
    node("filter", page).click()
    form = page.locator("form.node-form")
    expect(form.get_by_role("heading", name="Node filter")).to_be_visible()
    form.get_by_label("Connect to").select_option("delay")
    form.get_by_role("button", name="Connect", exact=True).click()
    node("delay", page).locator(".port-out").drag_to(node("console_log", page))
    expect(edges).to_have_count(3)
    expect(edges.and_(page.locator('[aria-label="Edge e3: delay to console_log"]'))).to_have_count(1)

    # a draft half-way: the filter's condition is required and the delay has no duration yet
    page.get_by_role("button", name="Save", exact=True).click()
    status = page.locator(".editor-status")
    expect(status).to_have_text("Saved as a draft with 2 problems to fix before it can run.")
    assert page.url.endswith(f"/ui/editor/{workflow_id}")  # a reload edits the saved workflow
    expect(page.get_by_role("heading", name=f"Edit workflow {workflow_id}")).to_be_visible()
    expect(node("filter", page).locator("text.problem")).to_have_text("⚠ condition: This field is required.")
    expect(node("filter", page)).to_have_class(re.compile("has-problems"))
    expect(node("delay", page).locator("text.problem")).to_have_text(
        "⚠ duration: Give either duration or until."
    )
    expect(node("sequence_numbers", page)).not_to_have_class(re.compile("has-problems"))
    node("filter", page).click()
    condition = page.get_by_label("Condition (required)")
    expect(condition).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".field.invalid .field-problem")).to_have_text("This field is required.")
    expect(page.get_by_role("button", name="Run", exact=True)).to_be_disabled()
    status_code, saved = api.get(f"/api/v1/workflows/{workflow_id}")
    assert status_code == 200 and saved["valid"] is False, saved
    assert saved["problems"] == {
        "nodes[1].config.condition": ["Node 'filter' (filter): This field is required."],
        "nodes[3].config.duration": ["Node 'delay' (delay): Give either duration or until."],
    }
    page.locator(".palette").evaluate("palette => palette.scrollTo(0, 0)")  # its top in the picture
    screenshot(page, "editor-problems")

    # the problems list leads to each field; completing them saves version 1
    problems = page.locator(".editor-problems")
    problems.get_by_role("button", name="Node filter, condition: This field is required.").click()
    expect(condition).to_be_focused()
    condition.fill("value > 1")
    problems.get_by_role("button", name="Node delay, duration: Give either duration or until.").click()
    duration = page.get_by_label("Duration (30s, 5m, 1h)")
    expect(duration).to_be_focused()
    duration.fill("6s")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(status).to_have_text("Saved: version 1, valid. It can run.")
    expect(page.locator("svg.editor-canvas text.problem")).to_have_count(0)
    expect(problems).to_contain_text("None: the last save is valid.")
    assert api.get(f"/api/v1/workflows/{workflow_id}")[1]["nodes"][3]["config"] == {"duration": "6s"}
    node("filter", page).click()
    page.locator(".palette").evaluate("palette => palette.scrollTo(0, 0)")  # its top in the picture
    screenshot(page, "editor")

    # run: the execution page follows it live, the delay waiting on its timer, then completed
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile("^Execution "))).to_be_visible()
    assert "/ui/executions/" in page.url
    graph_node = 'svg.graph g.node[data-node-id="{}"]'.format
    expect(page.locator(graph_node("delay"))).to_have_attribute("data-status", "waiting", timeout=20_000)
    expect(page.locator(".execution-status")).to_contain_text("completed", timeout=60_000)
    for node_id in ("sequence_numbers", "filter", "delay", "console_log"):
        expect(page.locator(graph_node(node_id))).to_have_attribute("data-status", "completed")
    assert still_the_same_document(page), "the page reloaded instead of updating in place"


def test_a_definition_is_imported_from_a_file_and_exported_back_as_its_id_json(
    page: Page, uid: str, tmp_path: Path
) -> None:
    definition = json.loads((EXAMPLES / "csv-pipeline.json").read_text())
    definition["id"] = f"imported-{uid}"
    chosen = tmp_path / "pipeline.json"
    chosen.write_text(json.dumps(definition))
    username, password = person()
    sign_in(page, username, password, path="/ui/editor")

    page.get_by_label("Import a definition (.json file)").set_input_files(str(chosen))
    expect(page.locator("svg.editor-canvas g.node")).to_have_count(4)
    expect(node("adults", page)).to_have_attribute("transform", "translate(200,0)")  # its own position
    expect(page.locator("svg.editor-canvas g.edge")).to_have_count(3)
    expect(page.get_by_label("Workflow id")).to_have_value(definition["id"])
    expect(page.get_by_label("Workflow name")).to_have_value(definition["name"])
    expect(page.get_by_label("Tags (comma-separated)")).to_have_value("example, csv")

    with page.expect_download() as downloading:
        page.get_by_role("button", name="Export JSON").click()
    download = downloading.value
    assert download.suggested_filename == f"{definition['id']}.json"
    assert json.loads(Path(download.path()).read_text()) == definition

    broken = tmp_path / "broken.json"
    broken.write_text('{"id": "x", "nodes": [')
    page.get_by_label("Import a definition (.json file)").set_input_files(str(broken))
    expect(page.locator(".editor-json .alert")).to_contain_text("Import of broken.json: Not valid JSON")
    expect(page.locator("svg.editor-canvas g.node")).to_have_count(4)  # nothing replaced


def test_the_json_view_follows_the_editor_and_applying_it_replaces_the_model(page: Page) -> None:
    username, password = person()
    sign_in(page, username, password, path="/ui/editor")
    page.locator(".palette-group.category-source").get_by_role("button", name="Add Number sequence").click()
    view = page.get_by_label("Definition (JSON)")
    expect(view).to_have_value(re.compile('"nodeType": "sequence.numbers"'))
    shown = json.loads(view.input_value())
    assert [n["id"] for n in shown["nodes"]] == ["sequence_numbers"]

    shown["name"] = "From the JSON view"
    shown["nodes"][0]["label"] = "Numbers from JSON"
    shown["nodes"].append({"id": "out", "type": "sink", "nodeType": "console.log", "config": {}})
    shown["edges"].append({"id": "e1", "source": "sequence_numbers", "target": "out"})
    view.fill(json.dumps(shown))
    page.get_by_role("button", name="Apply JSON").click()
    expect(node("sequence_numbers", page).locator("text.label")).to_have_text("Numbers from JSON")
    expect(node("out", page)).to_be_visible()  # placed by depth: it had no position
    expect(page.locator("svg.editor-canvas g.edge")).to_have_count(1)
    expect(page.get_by_label("Workflow name")).to_have_value("From the JSON view")
    again = json.loads(view.input_value())
    assert again["nodes"][1]["position"] == {"x": 260, "y": 20}
    del again["nodes"][1]["position"]
    assert again == shown  # the round trip keeps every field

    # the keyboard moves a node; a click selects an edge, whose form deletes it
    node("out", page).focus()
    page.keyboard.press("ArrowDown")
    expect(node("out", page)).to_have_attribute("transform", "translate(260,30)")
    page.locator("svg.editor-canvas g.edge").click()
    page.locator(".inspector").get_by_role("button", name="Delete edge e1").click()
    expect(page.locator("svg.editor-canvas g.edge")).to_have_count(0)
    assert json.loads(view.input_value())["edges"] == []

    view.fill('{"id": "x", "nodes": [}')
    page.get_by_role("button", name="Apply JSON").click()
    expect(page.locator(".editor-json .alert")).to_contain_text("JSON view: Not valid JSON")
    view.fill('{"id": "x", "nodes": {}}')
    page.get_by_role("button", name="Apply JSON").click()
    expect(page.locator(".editor-json .alert")).to_have_text('JSON view: "nodes" must be an array.')
    expect(page.locator("svg.editor-canvas g.node")).to_have_count(2)  # the model stayed


def test_a_viewer_reads_a_draft_in_the_editor_with_its_problems_but_cannot_save_or_run(
    page: Page, api: Api, uid: str
) -> None:
    workflow_id = create(api, quick(f"editor-viewer-{uid}", condition=None))  # a draft
    username, password = member("viewer")
    sign_in(page, username, password, path=f"/ui/editor/{workflow_id}")
    expect(page.get_by_role("heading", name=f"Edit workflow {workflow_id}")).to_be_visible()
    expect(page.locator(".editor .note")).to_contain_text("Your role (viewer) may not change definitions")
    expect(page.locator("svg.editor-canvas g.node")).to_have_count(3)
    expect(node("keep", page).locator("text.problem")).to_have_text("⚠ condition: This field is required.")
    expect(page.locator(".editor-status")).to_have_text(
        "Loaded the latest save: a draft (its problems are below)."
    )
    expect(page.get_by_role("button", name="Save")).to_have_count(0)
    expect(page.get_by_role("button", name="Run")).to_have_count(0)
    expect(page.locator(".palette")).to_have_count(0)
    expect(page.get_by_role("button", name="Apply JSON")).to_have_count(0)
    node("keep", page).click()
    expect(page.get_by_label("Condition (required)")).to_be_disabled()
    expect(page.get_by_role("button", name="Delete node keep")).to_have_count(0)
    page.keyboard.press("Delete")  # nothing to delete for a reader
    expect(page.locator("svg.editor-canvas g.node")).to_have_count(3)


def test_a_save_over_someone_elses_newer_save_is_refused_with_412_and_can_reload_theirs(
    page: Page, api: Api, uid: str
) -> None:
    workflow_id = create(api, quick(f"editor-stale-{uid}"))
    username, password = person()
    sign_in(page, username, password, path=f"/ui/editor/{workflow_id}")
    expect(page.locator(".editor-status")).to_have_text("Loaded the latest save: valid.")
    theirs = {**quick(workflow_id), "name": "Their name"}
    status_code, body = api.call("PUT", f"/api/v1/workflows/{workflow_id}", theirs)  # meanwhile, elsewhere
    assert status_code == 200 and body["version"] == 2, body

    page.get_by_label("Workflow name").fill("My name")
    node("keep", page).click()
    page.keyboard.press("Delete")  # the focused node goes, with its edges
    expect(page.locator("svg.editor-canvas g.node")).to_have_count(2)
    expect(page.locator("svg.editor-canvas g.edge")).to_have_count(0)
    page.get_by_role("button", name="Save", exact=True).click()
    conflict = page.locator(".editor .conflict")
    expect(conflict).to_contain_text("Someone else saved this workflow after you loaded it")
    expect(conflict).to_contain_text("412")
    assert api.get(f"/api/v1/workflows/{workflow_id}")[1]["name"] == "Their name"  # theirs stands

    conflict.get_by_role("button", name="Reload their version").click()
    expect(page.get_by_label("Workflow name")).to_have_value("Their name")
    expect(page.locator("svg.editor-canvas g.node")).to_have_count(3)
    page.get_by_label("Workflow name").fill("My name after all")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".editor-status")).to_have_text("Saved: version 3, valid. It can run.")
    assert api.get(f"/api/v1/workflows/{workflow_id}")[1]["name"] == "My name after all"


def test_an_operator_may_run_the_last_valid_save_from_the_editor_but_not_save(
    page: Page, api: Api, uid: str
) -> None:
    workflow_id = create(api, quick(f"editor-operator-{uid}"))
    username, password = member("operator")
    sign_in(page, username, password, path=f"/ui/editor/{workflow_id}")
    expect(page.locator(".editor .note")).to_contain_text("You may run the workflow's last valid save.")
    expect(page.get_by_role("button", name="Save")).to_have_count(0)
    page.get_by_label("Run input (JSON, optional)").fill("[1, 2]")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator(".editor .alert").first).to_have_text("Run input: must be a JSON object.")
    page.get_by_label("Run input (JSON, optional)").fill('{"from": "the editor"}')
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator(".execution-status")).to_contain_text("completed", timeout=60_000)
