"""The shape of job files at submit: gs:// objects on one side, /io on the other, for every job."""

from __future__ import annotations

import pytest

from services.front.errors import InvalidRequest
from services.front.specs import SpecRules, parse_job

RULES = SpecRules()


def _job(inputs=(), outputs=(), jar: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    if jar is not None:
        return {"job_id": 4, "process": {"type": "jvm", "command": ["Main"], "jar_spec": {"type": "jar_url",
                                                                                          "value": jar}}}
    return {"job_id": 4, "process": {"type": "docker", "image": "busybox", "command": ["true"]},
            "input_files": [{"from": s, "to": d} for s, d in inputs],
            "output_files": [{"from": s, "to": d} for s, d in outputs]}


def test_gs_objects_prefixes_and_io_paths_are_accepted() -> None:
    job = parse_job("bunch[3]", _job(inputs=[("gs://my-bucket/in/a.txt", "/io/a.txt"), ("gs://my-bucket/dir/", "/io/d"),
                                             ("gs://my-bucket/x", "rel/x")],
                                     outputs=[("/io/out", "gs://other.bucket/out/"), ("/io", "gs://my-bucket/all")]),
                    RULES)
    assert [c.src for c in job.spec.input_files] == ["gs://my-bucket/in/a.txt", "gs://my-bucket/dir/", "gs://my-bucket/x"]


@pytest.mark.parametrize(("inputs", "outputs", "field", "says"), [
    ([("/etc/shadow", "/io/s")], [], "input_files[0].from", "names a file on squall's machines"),
    ([("file:///etc/shadow", "/io/s")], [], "input_files[0].from", "absolute paths and file:// are refused"),
    ([("file://localhost/root/.squall/stack.json", "/io/s")], [], "input_files[0].from", "squall's machines"),
    ([("~/.squall/stack.json", "/io/s")], [], "input_files[0].from", "squall's machines"),
    ([("s3://bucket/x", "/io/s")], [], "input_files[0].from", "gs://BUCKET/OBJECT"),
    ([("gs://UPPER/x", "/io/s")], [], "input_files[0].from", "not a valid bucket name"),
    ([("gs://bucket/a/../b", "/io/s")], [], "input_files[0].from", "'..'"),
    ([("gs://bucket/x", "/etc/cron.d/x")], [], "input_files[0].to", "under /io"),
    ([("gs://bucket/x", "/io/../etc/x")], [], "input_files[0].to", "'..'"),
    ([], [("/io/out", "/tmp/pwned")], "output_files[0].to", "squall's machines"),
    ([], [("/io/out", "file:///tmp/pwned")], "output_files[0].to", "squall's machines"),
    ([], [("/etc/shadow", "gs://bucket/leak")], "output_files[0].from", "under /io"),
    ([], [("/io/ok", "gs://bucket/ok"), ("/io/b", "http://example.com/x")], "output_files[1].to", "gs://"),
])
def test_anything_else_is_a_400_naming_the_job_and_field(inputs, outputs, field: str, says: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidRequest) as err:
        parse_job("bunch[3]", _job(inputs, outputs), RULES)
    assert err.value.field == f"bunch[3].{field}"
    assert err.value.message.startswith(f"bunch[3].{field}: job 4: ") and says in err.value.message


@pytest.mark.parametrize("jar", ["/opt/app.jar", "file:///opt/app.jar", "https://example.com/a.jar"])
def test_a_jvm_jar_must_be_a_gs_object(jar: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        parse_job("bunch[0]", _job(jar=jar), RULES)
    assert err.value.field == "bunch[0].process.jar_spec.value"
