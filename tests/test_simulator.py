"""The provider simulator, spoken to over raw HTTP as a real client would (httpx, no adapter).

Most tests drive the simulator with a fake clock, so they step through queued → running → done
without sleeping; one test runs on the real clock with many concurrent jobs. Generated media is
checked structurally: an ISO-BMFF box walk plus an SPS parse for the MP4, a full decode with CRC
checks for the PNG.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from agent_tools.simulator import Simulator, SimSettings, running_simulator
from agent_tools.simulator.scenarios import Outcome

FAL_KEY = {"Authorization": "Key test-id:test-secret"}
WS_KEY = {"Authorization": "Bearer test-key"}
SORA_PRO = "fal-ai/sora-2/text-to-video/pro"
PIKA = "fal-ai/pika/v2.2/text-to-video"
IMAGE = "fal-ai/hunyuan-image/v3/text-to-image"
WS_MODEL = "wavespeed-ai/hunyuan-video/i2v"

QUEUE_S, RUN_S, CANCEL_S = 1.0, 2.0, 0.5


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def sim(clock: FakeClock) -> AsyncIterator[Simulator]:
    simulator = Simulator(SimSettings(queue_seconds=QUEUE_S, run_seconds=RUN_S, cancel_seconds=CANCEL_S),
                          clock=clock)
    await simulator.start(host="127.0.0.1", port=0)
    yield simulator
    await simulator.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def fal_submit(http: httpx.AsyncClient, sim: Simulator, endpoint: str = PIKA, prompt: str = "a cat surfing",
                     **extra: Any) -> dict[str, Any]:
    response = await http.post(f"{sim.fal_queue_url}/{endpoint}", json={"prompt": prompt, **extra}, headers=FAL_KEY)
    assert response.status_code == 200, response.text
    return response.json()


async def ws_submit(http: httpx.AsyncClient, sim: Simulator, prompt: str = "a dog running") -> dict[str, Any]:
    response = await http.post(f"{sim.wavespeed_base_url}/api/v3/{WS_MODEL}",
                               json={"prompt": prompt, "image": "https://example.invalid/a.png"}, headers=WS_KEY)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == 200 and body["message"] == "success"
    return body["data"]


# -- media checkers -------------------------------------------------------------------------------

def walk_boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) for each box in data[start:end]."""
    end = len(data) if end is None else end
    pos = start
    while pos < end:
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[pos + 8:pos + 16])[0], 16
        assert size >= header and pos + size <= end, f"box {kind!r} overruns its parent"
        yield kind, pos + header, pos + size
        pos += size
    assert pos == end


CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"dinf", b"stbl"}


def box_tree(data: bytes, start: int = 0, end: int | None = None) -> dict[bytes, Any]:
    tree: dict[bytes, Any] = {}
    for kind, a, b in walk_boxes(data, start, end):
        tree[kind] = box_tree(data, a, b) if kind in CONTAINERS else (a, b)
    return tree


class BitReader:
    def __init__(self, data: bytes) -> None:
        self.bits = "".join(f"{byte:08b}" for byte in data)
        self.pos = 0

    def u(self, n: int) -> int:
        value = int(self.bits[self.pos:self.pos + n], 2)
        self.pos += n
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bits[self.pos] == "0":
            zeros += 1
            self.pos += 1
        return self.u(zeros + 1) - 1


def unescape(nal: bytes) -> bytes:
    return nal.replace(b"\x00\x00\x03", b"\x00\x00")


def parse_sps(nal: bytes) -> dict[str, int]:
    assert nal[0] & 0x1F == 7
    r = BitReader(unescape(nal[1:]))
    sps = {"profile": r.u(8), "constraints": r.u(8), "level": r.u(8), "id": r.ue()}
    assert sps["profile"] == 66, "expected Baseline"
    r.ue()  # log2_max_frame_num_minus4
    poc_type = r.ue()
    if poc_type == 0:
        r.ue()
    assert poc_type in (0, 2)
    r.ue()  # max_num_ref_frames
    r.u(1)
    width_mbs, height_units = r.ue() + 1, r.ue() + 1
    frame_mbs_only = r.u(1)
    if not frame_mbs_only:
        r.u(1)
    r.u(1)
    left = right = top = bottom = 0
    if r.u(1):
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
    sps["width"] = width_mbs * 16 - 2 * (left + right)
    sps["height"] = height_units * 16 * (2 - frame_mbs_only) - 2 * (top + bottom)
    return sps


def check_mp4(data: bytes) -> dict[str, Any]:
    """Walk the box tree, parse avcC's SPS and every sample; return what a player would see."""
    tree = box_tree(data)
    assert list(tree)[:3] == [b"ftyp", b"moov", b"mdat"]
    a, b = tree[b"ftyp"]
    assert data[a:a + 4] == b"isom"
    trak = tree[b"moov"][b"trak"]
    assert b"mvhd" in tree[b"moov"] and b"tkhd" in trak
    mdia = trak[b"mdia"]
    assert {b"mdhd", b"hdlr", b"minf"} <= set(mdia)
    a, b = mdia[b"hdlr"]
    assert data[a + 8:a + 12] == b"vide"
    minf = mdia[b"minf"]
    assert {b"vmhd", b"dinf", b"stbl"} <= set(minf)
    stbl = minf[b"stbl"]
    assert {b"stsd", b"stts", b"stsc", b"stsz", b"stco", b"stss"} <= set(stbl)

    a, b = stbl[b"stsd"]
    (entries,) = struct.unpack(">I", data[a + 4:a + 8])
    assert entries == 1
    entry = list(walk_boxes(data, a + 8, b))
    assert entry[0][0] == b"avc1"
    _, ea, eb = entry[0]
    width, height = struct.unpack(">HH", data[ea + 24:ea + 28])
    (avcc_kind, ca, cb), = walk_boxes(data, ea + 78, eb)
    assert avcc_kind == b"avcC"
    cfg = data[ca:cb]
    assert cfg[0] == 1 and cfg[4] & 3 == 3 and cfg[5] & 0x1F == 1
    sps_len = struct.unpack(">H", cfg[6:8])[0]
    sps = parse_sps(cfg[8:8 + sps_len])
    assert (cfg[1], cfg[3]) == (sps["profile"], sps["level"])
    pps_at = 8 + sps_len
    assert cfg[pps_at] == 1 and cfg[pps_at + 3] & 0x1F == 8

    a, _ = stbl[b"stsz"]
    sample_size, count = struct.unpack(">II", data[a + 4:a + 12])
    assert sample_size == 0
    sizes = struct.unpack(f">{count}I", data[a + 12:a + 12 + 4 * count])
    a, _ = stbl[b"stco"]
    chunks, offset = struct.unpack(">II", data[a + 4:a + 12])
    a, _ = stbl[b"stsc"]
    assert struct.unpack(">IIII", data[a + 4:a + 20]) == (1, 1, count, 1)
    a, _ = stbl[b"stts"]
    _, stts_count, delta = struct.unpack(">III", data[a + 4:a + 16])
    a, _ = stbl[b"stss"]
    assert struct.unpack(">I", data[a + 4:a + 8])[0] >= 1
    a, _ = mdia[b"mdhd"]
    timescale, duration = struct.unpack(">II", data[a + 12:a + 20])
    assert stts_count == count and duration == count * delta

    ma, mb = tree[b"mdat"]
    assert chunks == 1 and offset == ma and sum(sizes) == mb - ma
    pos = offset
    for size in sizes:  # every sample: length-prefixed NAL units, an IDR/I slice among them
        end, types = pos + size, []
        while pos < end:
            (nal_len,) = struct.unpack(">I", data[pos:pos + 4])
            nal = data[pos + 4:pos + 4 + nal_len]
            types.append(nal[0] & 0x1F)
            if nal[0] & 0x1F in (1, 5):
                r = BitReader(unescape(nal[1:9]))
                r.ue()
                assert r.ue() in (2, 7), "every frame is an I slice"
            pos += 4 + nal_len
        assert pos == end and 5 in types
    return {"width": width, "height": height, "sps": sps, "frames": count, "seconds": duration / timescale}


def decode_png(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and raw scanlines, after checking the signature and every chunk's CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    height = 0
    kinds = []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, f"bad CRC in {kind!r}"
        kinds.append(kind)
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert (depth, colour) == (8, 2)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND"
    raw = zlib.decompress(idat)
    assert len(raw) == height * (1 + 3 * width)
    assert all(raw[row * (1 + 3 * width)] <= 4 for row in range(height))
    return width, height, raw


# -- fal: the queue ---------------------------------------------------------------------------------

async def test_fal_happy_path_walks_queue_progress_and_completion(sim: Simulator, clock: FakeClock,
                                                                  http: httpx.AsyncClient) -> None:
    sub = await fal_submit(http, sim, SORA_PRO, "A cat surfing a wave at sunset")
    assert sub["status"] == "IN_QUEUE" and sub["queue_position"] == 0
    rid = sub["request_id"]
    base = f"{sim.fal_queue_url}/fal-ai/sora-2/requests/{rid}"  # owner/app only, never the sub-path
    assert (sub["response_url"], sub["status_url"], sub["cancel_url"]) == (base, f"{base}/status", f"{base}/cancel")

    status = await http.get(sub["status_url"], headers=FAL_KEY)
    assert status.status_code == 202
    assert status.json()["status"] == "IN_QUEUE" and status.json()["queue_position"] == 0

    early = await http.get(sub["response_url"], headers=FAL_KEY)
    assert early.status_code == 400 and early.json() == {"detail": "Request is still in progress"}

    clock.advance(QUEUE_S + RUN_S / 2)
    status = await http.get(sub["status_url"], params={"logs": "1"}, headers=FAL_KEY)
    body = status.json()
    assert status.status_code == 202 and body["status"] == "IN_PROGRESS" and "queue_position" not in body
    assert body["logs"] and {"message", "level", "source", "timestamp"} <= set(body["logs"][0])
    quiet = (await http.get(sub["status_url"], headers=FAL_KEY)).json()
    assert "logs" in quiet and quiet["logs"] is None

    clock.advance(RUN_S)
    status = await http.get(sub["status_url"], params={"logs": "true"}, headers=FAL_KEY)
    body = status.json()
    assert status.status_code == 200 and body["status"] == "COMPLETED"
    assert body["metrics"]["inference_time"] == pytest.approx(RUN_S)
    assert body["logs"][-1]["message"] == "Generation finished" and "error" not in body

    result = await http.get(sub["response_url"], headers=FAL_KEY)
    assert result.status_code == 200
    out = result.json()
    video = out["video"]
    assert video["content_type"] == "video/mp4" and isinstance(out["seed"], int)
    assert out["video_id"].startswith("video_")
    media = await http.get(video["url"])
    assert media.status_code == 200 and media.headers["content-type"] == "video/mp4"
    assert len(media.content) == video["file_size"] and video["url"].endswith(video["file_name"])
    info = check_mp4(media.content)
    assert (info["width"], info["height"]) == (320, 180)

    head = await http.head(video["url"])
    assert head.status_code == 200 and int(head.headers["content-length"]) == video["file_size"]
    part = await http.get(video["url"], headers={"Range": "bytes=0-7"})
    assert part.status_code == 206 and part.content == media.content[:8]


async def test_fal_output_shapes_per_model(sim: Simulator, clock: FakeClock, http: httpx.AsyncClient) -> None:
    pika = await fal_submit(http, sim, PIKA, "x", seed=42)
    image = await fal_submit(http, sim, IMAGE, "poster of a lighthouse", image_size="landscape_16_9", num_images=2)
    custom = await fal_submit(http, sim, IMAGE, "square", image_size={"width": 300, "height": 200})
    clock.advance(QUEUE_S + RUN_S)
    out = (await http.get(pika["response_url"], headers=FAL_KEY)).json()
    assert set(out) == {"video", "seed"} and out["seed"] == 42
    assert set(out["video"]) == {"url", "content_type", "file_name", "file_size"}

    assert image["status_url"].startswith(f"{sim.fal_queue_url}/fal-ai/hunyuan-image/requests/")
    out = (await http.get(image["response_url"], headers=FAL_KEY)).json()
    assert len(out["images"]) == 2 and isinstance(out["seed"], int)
    for item in out["images"]:
        assert (item["width"], item["height"], item["content_type"]) == (1024, 576, "image/png")
        png = await http.get(item["url"])
        assert png.headers["content-type"] == "image/png"
        assert decode_png(png.content)[:2] == (512, 288)  # requested size, scaled to ≤ 512 px

    out = (await http.get(custom["response_url"], headers=FAL_KEY)).json()
    (item,) = out["images"]
    assert (item["width"], item["height"]) == (300, 200)
    assert decode_png((await http.get(item["url"])).content)[:2] == (300, 200)


async def test_fal_queue_position_counts_down(sim: Simulator, clock: FakeClock, http: httpx.AsyncClient) -> None:
    sub = await fal_submit(http, sim, PIKA, "busy day [sim:queue=3]")
    assert sub["queue_position"] == 3
    seen = []
    for _ in range(4):
        seen.append((await http.get(sub["status_url"], headers=FAL_KEY)).json()["queue_position"])
        clock.advance(QUEUE_S)
    assert seen == [3, 2, 1, 0]
    assert (await http.get(sub["status_url"], headers=FAL_KEY)).json()["status"] == "IN_PROGRESS"


async def test_fal_status_urls_use_owner_and_app_only(sim: Simulator, clock: FakeClock,
                                                      http: httpx.AsyncClient) -> None:
    sub = await fal_submit(http, sim, SORA_PRO)
    rid = sub["request_id"]
    wrong = f"{sim.fal_queue_url}/{SORA_PRO}/requests/{rid}"
    for response in (await http.get(f"{wrong}/status", headers=FAL_KEY), await http.get(wrong, headers=FAL_KEY),
                     await http.put(f"{wrong}/cancel", headers=FAL_KEY)):
        assert response.status_code in (404, 405)
        assert "detail" in response.json()
    other_app = f"{sim.fal_queue_url}/fal-ai/pika/requests/{rid}/status"
    assert (await http.get(other_app, headers=FAL_KEY)).status_code == 404
    unknown = f"{sim.fal_queue_url}/fal-ai/sora-2/requests/00000000-0000-0000-0000-000000000000"
    assert (await http.get(f"{unknown}/status", headers=FAL_KEY)).status_code == 404
    assert (await http.get(f"{sim.fal_queue_url}/{PIKA}", headers=FAL_KEY)).status_code == 405
    assert (await http.get(sub["status_url"], headers=FAL_KEY)).status_code == 202  # the returned URL works


@pytest.mark.parametrize(("marker", "code", "check"), [
    ("content_policy", 422, lambda b, h: b["detail"][0]["type"] == "content_policy_violation"),
    ("invalid", 422, lambda b, h: b["detail"][0]["type"] == "value_error" and b["detail"][0]["loc"]),
    ("detail_string", 422, lambda b, h: isinstance(b["detail"], str)),
    ("media_error", 422, lambda b, h: b["detail"][0]["type"] == "file_download_error"),
    ("server_error", 500, lambda b, h: b["error_type"] == h["x-fal-error-type"] == "runner_server_error"),
    ("server_error=503", 503, lambda b, h: h["x-fal-error-type"] == "runner_scheduling_failure"),
    ("timeout", 504, lambda b, h: b["error_type"] == "request_timeout" and "x-fal-request-timeout-type" not in h),
    ("user_timeout", 504, lambda b, h: h["x-fal-request-timeout-type"] == "user"),
    ("status_error", 500, lambda b, h: b["error_type"] == "internal_error"),
])
async def test_fal_scripted_failures_complete_then_fail_at_the_result(
        sim: Simulator, clock: FakeClock, http: httpx.AsyncClient, marker: str, code: int, check: Any) -> None:
    sub = await fal_submit(http, sim, PIKA, f"a scene [sim:{marker}]")
    clock.advance(QUEUE_S + RUN_S)
    status = await http.get(sub["status_url"], headers=FAL_KEY)
    assert status.status_code == 200 and status.json()["status"] == "COMPLETED"
    has_error = "error" in status.json()
    assert has_error == (marker in ("timeout", "user_timeout", "status_error"))
    result = await http.get(sub["response_url"], headers=FAL_KEY)
    assert result.status_code == code
    assert check(result.json(), result.headers)


async def test_fal_user_timeout_never_runs_and_request_timeout_header(sim: Simulator, clock: FakeClock,
                                                                      http: httpx.AsyncClient) -> None:
    sub = await fal_submit(http, sim, PIKA, "x [sim:user_timeout]")
    clock.advance(QUEUE_S)
    assert (await http.get(sub["status_url"], headers=FAL_KEY)).json()["status"] == "COMPLETED"
    response = await http.post(f"{sim.fal_queue_url}/{PIKA}", json={"prompt": "long queue [sim:queue=5]"},
                               headers={**FAL_KEY, "X-Fal-Request-Timeout": "2.0"})
    sub = response.json()
    clock.advance(2.0)
    assert (await http.get(sub["status_url"], headers=FAL_KEY)).json()["status"] == "COMPLETED"
    result = await http.get(sub["response_url"], headers=FAL_KEY)
    assert result.status_code == 504 and result.headers["x-fal-request-timeout-type"] == "user"


async def test_fal_flaky_polls_then_recover(sim: Simulator, http: httpx.AsyncClient) -> None:
    sub = await fal_submit(http, sim, PIKA, "x [sim:flaky=2]")
    codes = [(await http.get(sub["status_url"], headers=FAL_KEY)).status_code for _ in range(3)]
    assert codes == [503, 503, 202]


async def test_fal_rate_limits_and_unknown_markers(clock: FakeClock, http: httpx.AsyncClient) -> None:
    async with Simulator(SimSettings(max_submits_per_second=2), clock=clock) as sim:
        url = f"{sim.fal_queue_url}/{PIKA}"
        marked = await http.post(url, json={"prompt": "x [sim:rate_limit]"}, headers=FAL_KEY)
        assert marked.status_code == 429 and "detail" in marked.json() and "retry-after" in marked.headers
        codes = [(await http.post(url, json={"prompt": "x"}, headers=FAL_KEY)).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        clock.advance(1.1)
        assert (await http.post(url, json={"prompt": "x"}, headers=FAL_KEY)).status_code == 200
        typo = await http.post(url, json={"prompt": "x [sim:contentpolicy]"}, headers=FAL_KEY)
        assert typo.status_code == 422 and "unknown simulator marker" in typo.json()["detail"][0]["msg"]
        assert sim.stats.submits["fal"] == 3
    async with Simulator(SimSettings(rate_limit=True), clock=clock) as sim:
        response = await http.post(f"{sim.wavespeed_base_url}/api/v3/{WS_MODEL}", json={"prompt": "x"},
                                   headers=WS_KEY)
        assert response.status_code == 429 and response.json()["code"] == 429


async def test_settings_script_the_default_outcome(clock: FakeClock, http: httpx.AsyncClient) -> None:
    async with Simulator(SimSettings(queue_seconds=0, run_seconds=1, outcome=Outcome.CONTENT_POLICY),
                         clock=clock) as sim:
        default = await fal_submit(http, sim, PIKA, "nothing special")
        explicit = await fal_submit(http, sim, PIKA, "overridden [sim:ok]")
        clock.advance(1)
        assert (await http.get(default["response_url"], headers=FAL_KEY)).status_code == 422
        assert (await http.get(explicit["response_url"], headers=FAL_KEY)).status_code == 200


# -- fal: cancel ------------------------------------------------------------------------------------

async def test_fal_cancel_in_each_state(sim: Simulator, clock: FakeClock, http: httpx.AsyncClient) -> None:
    queued = await fal_submit(http, sim, PIKA, "q [sim:queue=2]")
    running = await fal_submit(http, sim, PIKA, "r")
    done = await fal_submit(http, sim, PIKA, "d [sim:slow=0.1]")

    for method in ("GET", "POST"):
        assert (await http.request(method, queued["cancel_url"], headers=FAL_KEY)).status_code == 405

    response = await http.put(queued["cancel_url"], headers=FAL_KEY)
    assert response.status_code == 202 and response.json() == {"status": "CANCELLATION_REQUESTED"}
    status = await http.get(queued["status_url"], headers=FAL_KEY)
    assert status.status_code == 200 and status.json()["status"] == "COMPLETED"
    result = await http.get(queued["response_url"], headers=FAL_KEY)
    assert result.status_code == 499 and result.json()["error_type"] == "client_cancelled"

    clock.advance(QUEUE_S + 0.5)  # `running` is IN_PROGRESS, `done` finished
    response = await http.put(running["cancel_url"], headers=FAL_KEY)
    assert response.status_code == 202 and response.json()["status"] == "CANCELLATION_REQUESTED"
    assert (await http.get(running["status_url"], headers=FAL_KEY)).json()["status"] == "IN_PROGRESS"
    clock.advance(CANCEL_S)
    assert (await http.get(running["status_url"], headers=FAL_KEY)).json()["status"] == "COMPLETED"
    assert (await http.get(running["response_url"], headers=FAL_KEY)).status_code == 499

    response = await http.put(done["cancel_url"], headers=FAL_KEY)
    assert response.status_code == 400 and response.json() == {"status": "ALREADY_COMPLETED"}
    assert (await http.get(done["response_url"], headers=FAL_KEY)).status_code == 200

    unknown = queued["cancel_url"].replace(queued["request_id"], "00000000-0000-0000-0000-000000000000")
    response = await http.put(unknown, headers=FAL_KEY)
    assert response.status_code == 404 and response.json() == {"status": "NOT_FOUND"}


async def test_fal_status_stream(sim: Simulator, clock: FakeClock, http: httpx.AsyncClient) -> None:
    sub = await fal_submit(http, sim, PIKA, "stream [sim:slow=0]")
    clock.advance(QUEUE_S)
    async with http.stream("GET", f"{sub['status_url']}/stream", headers=FAL_KEY) as response:
        events = [line async for line in response.aiter_lines() if line.startswith("data: ")]
    assert '"COMPLETED"' in events[-1]


# -- fal: uploads -----------------------------------------------------------------------------------

async def test_fal_upload_initiate_put_and_serve(sim: Simulator, http: httpx.AsyncClient) -> None:
    url = f"{sim.fal_rest_url}/storage/upload/initiate"
    params = {"storage_type": "fal-cdn-v3"}
    meta = {"content_type": "image/png", "file_name": "cat.png"}
    assert (await http.post(url, params=params, json=meta)).status_code == 401
    response = await http.post(url, params=params, json=meta, headers=FAL_KEY)
    assert response.status_code == 200
    ticket = response.json()
    assert ticket["file_url"].startswith(f"{sim.base_url}/files/") and ticket["file_url"].endswith("/cat.png")
    payload = b"\x89PNG fake bytes"

    refused = await http.put(ticket["upload_url"], content=payload, headers={"Content-Type": "image/png", **FAL_KEY})
    assert refused.status_code == 400 and b"InvalidArgument" in refused.content
    unsigned = ticket["upload_url"].split("?", 1)[0]
    assert (await http.put(unsigned, content=payload, headers={"Content-Type": "image/png"})).status_code == 403
    assert (await http.get(ticket["file_url"])).status_code == 404  # nothing uploaded yet

    ok = await http.put(ticket["upload_url"], content=payload, headers={"Content-Type": "image/png"})
    assert ok.status_code == 200
    served = await http.get(ticket["file_url"])
    assert served.status_code == 200 and served.content == payload
    assert served.headers["content-type"] == "image/png"


async def test_fal_python_token_upload_flow(sim: Simulator, http: httpx.AsyncClient) -> None:
    token = (await http.post(f"{sim.fal_rest_url}/storage/auth/token", params={"storage_type": "fal-cdn-v3"},
                             json={}, headers=FAL_KEY)).json()
    assert token["token_type"] == "Bearer" and token["base_url"] == sim.fal_cdn_url
    headers = {"Authorization": f"Bearer {token['token']}", "Content-Type": "text/plain", "X-Fal-File-Name": "a.txt"}
    response = await http.post(f"{token['base_url']}/files/upload", content=b"hello", headers=headers)
    assert response.status_code == 200
    assert (await http.get(response.json()["access_url"])).content == b"hello"
    bad = await http.post(f"{token['base_url']}/files/upload", content=b"x", headers={"Authorization": "Bearer no"})
    assert bad.status_code == 401


# -- WaveSpeed ------------------------------------------------------------------------------------

async def test_wavespeed_happy_path_in_the_envelope(sim: Simulator, clock: FakeClock,
                                                    http: httpx.AsyncClient) -> None:
    data = await ws_submit(http, sim, "a dog running on a beach")
    assert data["status"] == "created" and data["outputs"] == [] and data["model"] == WS_MODEL
    get_url = data["urls"]["get"]
    assert get_url == f"{sim.wavespeed_base_url}/api/v3/predictions/{data['id']}/result"
    bare_url = get_url.removesuffix("/result")

    async def poll(url: str) -> dict[str, Any]:
        response = await http.get(url, headers=WS_KEY)
        assert response.status_code == 200 and response.json()["code"] == 200
        return response.json()["data"]

    assert (await poll(get_url))["status"] == "created"
    clock.advance(QUEUE_S + 0.1)
    assert (await poll(bare_url))["status"] == "processing"
    clock.advance(RUN_S)
    done = await poll(get_url)
    assert done["status"] == "completed" and done["error"] == ""
    assert len(done["outputs"]) == 1 and done["has_nsfw_contents"] == [False]
    assert done["timings"]["inference"] == int(RUN_S * 1000)
    assert (await poll(bare_url))["outputs"] == done["outputs"]
    media = await http.get(done["outputs"][0])
    assert media.headers["content-type"] == "video/mp4"
    assert check_mp4(media.content)["frames"] >= 2

    missing = await http.get(f"{sim.wavespeed_base_url}/api/v3/predictions/nope/result", headers=WS_KEY)
    assert missing.status_code == 404 and missing.json() == {"code": 404, "message": "prediction not found"}


@pytest.mark.parametrize(("marker", "task_code"), [("content_policy", 1200), ("media_error", 1402),
                                                   ("server_error", 5000), ("timeout", 5004)])
async def test_wavespeed_failures_are_http_200(sim: Simulator, clock: FakeClock, http: httpx.AsyncClient,
                                               marker: str, task_code: int) -> None:
    data = await ws_submit(http, sim, f"x [sim:{marker}]")
    clock.advance(QUEUE_S + RUN_S)
    response = await http.get(data["urls"]["get"], headers=WS_KEY)
    assert response.status_code == 200 and response.json()["code"] == 200
    failed = response.json()["data"]
    assert failed["status"] == "failed" and failed["code"] == task_code and failed["error"]
    assert failed["outputs"] == []


async def test_wavespeed_flaky_and_markers(sim: Simulator, http: httpx.AsyncClient) -> None:
    data = await ws_submit(http, sim, "x [sim:flaky=1]")
    assert (await http.get(data["urls"]["get"], headers=WS_KEY)).status_code == 503
    assert (await http.get(data["urls"]["get"], headers=WS_KEY)).status_code == 200
    bad = await http.post(f"{sim.wavespeed_base_url}/api/v3/{WS_MODEL}", json={"prompt": "[sim:slow=soon]"},
                          headers=WS_KEY)
    assert bad.status_code == 400 and bad.json()["code"] == 400


async def test_wavespeed_sync_mode_blocks_until_done(http: httpx.AsyncClient) -> None:
    async with Simulator(SimSettings(queue_seconds=0.02, run_seconds=0.05)) as sim:
        response = await http.post(f"{sim.wavespeed_base_url}/api/v3/{WS_MODEL}",
                                   json={"prompt": "x", "enable_sync_mode": True}, headers=WS_KEY)
        assert response.json()["data"]["status"] == "completed"


async def test_wavespeed_ticket_upload(sim: Simulator, http: httpx.AsyncClient) -> None:
    payload = b"GIF89a not really"
    response = await http.post(f"{sim.wavespeed_base_url}/api/v3/media/uploads",
                               json={"filename": "a.gif", "size": len(payload), "content_type": "image/gif"},
                               headers=WS_KEY)
    assert response.status_code == 200 and response.json()["code"] == 200
    data = response.json()["data"]
    upload = data["upload"]
    assert upload["method"] == "PUT" and data["type"] == "image" and data["size"] == len(payload)

    with_auth = await http.put(upload["url"], content=payload, headers={**upload["headers"], **WS_KEY})
    assert with_auth.status_code == 400
    partial = {k: v for k, v in upload["headers"].items() if k != "If-None-Match"}
    assert (await http.put(upload["url"], content=payload, headers=partial)).status_code == 403
    short = await http.put(upload["url"], content=payload[:3], headers=upload["headers"])
    assert short.status_code == 400
    assert (await http.put(upload["url"], content=payload, headers=upload["headers"])).status_code == 200
    assert (await http.put(upload["url"], content=payload, headers=upload["headers"])).status_code == 412

    served = await http.get(data["download_url"])
    assert served.content == payload and served.headers["content-type"] == "image/gif"
    assert (await http.post(f"{sim.wavespeed_base_url}/api/v3/media/uploads", json={"filename": "a.gif"},
                            headers=WS_KEY)).status_code == 400


async def test_wavespeed_legacy_binary_upload(sim: Simulator, http: httpx.AsyncClient) -> None:
    response = await http.post(f"{sim.wavespeed_base_url}/api/v3/media/upload/binary",
                               files={"file": ("clip.mp4", b"\x00\x00\x00\x18ftypisom", "video/mp4")}, headers=WS_KEY)
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["type"] == "video" and data["filename"] == "clip.mp4" and data["size"] == 12
    assert (await http.get(data["download_url"])).content == b"\x00\x00\x00\x18ftypisom"
    missing = await http.post(f"{sim.wavespeed_base_url}/api/v3/media/upload/binary",
                              files={"other": ("a", b"x")}, headers=WS_KEY)
    assert missing.status_code == 400 and missing.json()["code"] == 400


# -- keys -------------------------------------------------------------------------------------------

async def test_bad_and_broke_keys(sim: Simulator, http: httpx.AsyncClient) -> None:
    fal_url = f"{sim.fal_queue_url}/{PIKA}"
    body = {"prompt": "x"}
    missing = await http.post(fal_url, json=body)
    assert missing.status_code == 401 and "detail" in missing.json()
    assert (await http.post(fal_url, json=body, headers={"Authorization": "Bearer k"})).status_code == 401
    bad = await http.post(fal_url, json=body, headers={"Authorization": "Key bad-key:secret"})
    assert bad.status_code == 401 and bad.json() == {"detail": "No user found for Key ID and Secret"}
    broke = await http.post(fal_url, json=body, headers={"Authorization": "Key broke:secret"})
    assert broke.status_code == 403 and broke.json()["detail"].startswith("User is locked. Reason: Exhausted balance")

    ws_url = f"{sim.wavespeed_base_url}/api/v3/{WS_MODEL}"
    for headers in ({}, {"Authorization": "Key k"}, {"Authorization": "Bearer bad"}):
        response = await http.post(ws_url, json=body, headers=headers)
        assert response.status_code == 401 and response.json() == {"code": 401, "message": "Unauthorized"}
    broke = await http.post(ws_url, json=body, headers={"Authorization": "Bearer broke"})
    assert broke.status_code in (400, 402) and broke.json()["message"] == "insufficient balance"
    assert sim.stats.total_submits == 0


async def test_allowed_keys_setting(clock: FakeClock, http: httpx.AsyncClient) -> None:
    async with Simulator(SimSettings(api_keys=frozenset({"only:this"})), clock=clock) as sim:
        url = f"{sim.fal_queue_url}/{PIKA}"
        assert (await http.post(url, json={}, headers={"Authorization": "Key only:this"})).status_code == 200
        assert (await http.post(url, json={}, headers={"Authorization": "Key other:key"})).status_code == 401


# -- scale, stats and helpers -----------------------------------------------------------------------

async def test_many_concurrent_jobs_on_the_real_clock(http: httpx.AsyncClient) -> None:
    async with Simulator(SimSettings(queue_seconds=0.05, run_seconds=0.1)) as sim:
        async def one(i: int) -> int:
            sub = await fal_submit(http, sim, PIKA, f"benchmark clip {i % 3}")
            polls = 0
            while True:
                polls += 1
                status = await http.get(sub["status_url"], headers=FAL_KEY)
                if status.json()["status"] == "COMPLETED":
                    break
                await asyncio.sleep(0.03)
            result = await http.get(sub["response_url"], headers=FAL_KEY)
            assert result.status_code == 200
            return polls

        polls = await asyncio.gather(*(one(i) for i in range(200)))  # how fast: bench/, not here
        assert sim.stats.submits["fal"] == 200 and sim.stats.routes["fal.result"] == 200
        assert sim.stats.routes["fal.status"] == sum(polls)
        assert sim.stats.requests == 200 * 2 + sum(polls)
        assert sim.stats.requests_per_job() == pytest.approx(2 + sum(polls) / 200)
        assert sim.core.media.renders == 3  # one encode per distinct caption, not per job


def test_running_simulator_in_a_thread() -> None:
    with running_simulator(SimSettings(queue_seconds=0, run_seconds=0)) as sim:
        response = httpx.post(f"{sim.fal_queue_url}/{PIKA}", json={"prompt": "sync"}, headers=FAL_KEY)
        status = httpx.get(response.json()["status_url"], headers=FAL_KEY)
        assert status.status_code == 200 and status.json()["status"] == "COMPLETED"
        index = httpx.get(f"{sim.base_url}/").json()
        assert index["wavespeed_base_url"] == sim.wavespeed_base_url and "[sim:flaky]" in index["markers"]
        assert sim.stats.requests == 3


def test_media_is_small() -> None:
    from agent_tools.simulator import media

    clip = media.render_video("a fresh caption")  # its speed is measured in bench/, not asserted here
    assert len(clip) < 500_000
    info = check_mp4(clip)
    assert info["sps"]["width"] == 320 and info["sps"]["height"] == 180 and info["seconds"] >= 1


async def test_finished_requests_expire(clock: FakeClock, http: httpx.AsyncClient) -> None:
    async with Simulator(SimSettings(queue_seconds=0, run_seconds=1, result_retention_seconds=60),
                         clock=clock) as sim:
        sub = await fal_submit(http, sim, PIKA, "x")
        clock.advance(30)
        sim.core.forget_old_jobs()
        assert (await http.get(sub["response_url"], headers=FAL_KEY)).status_code == 200
        clock.advance(60)
        sim.core.forget_old_jobs()
        assert (await http.get(sub["response_url"], headers=FAL_KEY)).status_code == 404
