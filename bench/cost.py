"""Section 3, prompt cost: the prompt sent to Gemini as one conversation grows long."""

from __future__ import annotations

from pathlib import Path

from bench import servers
from bench.fake_client import Fake
from bench.load import Connection, question, sender, webhook_request
from bench.plan import Plan
from bench.report import Row, Section, ratio, verdict


async def cost(plan: Plan, workdir: Path, fake: Fake) -> Section:
    section = Section("3. Prompt cost")
    await fake.reset(delay=0.0)
    ids = [f"wamid.bench-conv-{k:04d}" for k in range(1, plan.conversation_length + 1)]
    workers = str(plan.worker_processes)
    with servers.service(workdir / "cost", fake.process.url, worker_processes=workers) as svc:
        conn = await Connection.open(svc.port)
        try:
            for k, message_id in enumerate(ids, start=1):
                status, _ = await conn.request(webhook_request(svc.port, message_id, sender(42)))
                if status != 200 or await fake.wait_sent(k, 15) < k:
                    raise RuntimeError(f"conversation stalled at message {k} (status {status})")
        finally:
            conn.close()
    prompts = {p["q"]: p for p in await fake.call("prompts")}
    first, last = (prompts[question(ids[n - 1])] for n in plan.probes)
    a, b = plan.probes
    flat = last["chars"] <= first["chars"] * 1.05
    section.rows += [
        Row(
            f"prompt chars, message #{a} → #{b}",
            f"{first['chars']} (#{a})",
            f"{last['chars']} (#{b})",
            ratio(last["chars"], first["chars"]),
            "flat (≤ 1.05×)",
            verdict(flat),
        ),
        Row(
            f"prompt tokens*, message #{a} → #{b}",
            f"{first['chars'] // 4} (#{a})",
            f"{last['chars'] // 4} (#{b})",
            ratio(last["chars"] // 4, first["chars"] // 4),
        ),
    ]
    growth = [
        [
            f"#{n}",
            str(prompts[question(ids[n - 1])]["chars"]),
            str(prompts[question(ids[n - 1])]["contents"]),
        ]
        for n in (1, 2, 5, 10, 11, 20, 50, 100, 200)
        if n <= len(ids)
    ]
    section.details.append((["message", "prompt chars", "contents (turns sent)"], growth))
    section.notes += [
        (
            f"{len(ids)} messages from one user, each posted after the previous answer arrived "
            "(fake Gemini answering at once). Chars = all text parts of the request, system "
            "instruction included, counted by the fake. *Tokens are a stand-in: the fake reports "
            "promptTokenCount = chars / 4 (it has no tokenizer). Defaults HISTORY_TURNS=20, "
            f"HISTORY_MAX_CHARS=16000; WORKER_PROCESSES={plan.worker_processes}."
        ),
    ]
    return section
