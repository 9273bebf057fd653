"""Customer chat under load: turns/s and latency for 100 simulated customers over HTTP.

    .venv/bin/python benchmarks/chat_load.py [--customers 100] [--duration 30] [--warmup 10]
        [--think 0.75] [--workers 1] [--data-dir DIR] [--json]

A real server (``allo serve`` in its own process, on a free loopback port) runs on a
temporary data folder holding the demo knowledge base (ingested with ``allo ingest``, the
default ONNX e5 embedder, no language model). Once every worker process has started
(its log line says so; the keep-alive connections of customers who came earlier would all
stay on the first worker ready), ``--customers`` simulated customers chat with it
concurrently over keep-alive connections, each playing whole conversations, one after
another, until the time is up:

1. ``POST /v1/conversations`` (not a turn; its latency is reported as ``open_*``);
2. a free-text first message that should start a guided tutorial, in one of many French
   phrasings written for this benchmark (none is a training example: checked at start);
3. through the tutorial: a button answer (chosen at random among those offered) whenever
   the bot shows buttons, a free-text answer (phone number, address, date, amount) when it
   asks an open question, until the tutorial ends or ``--max-steps`` answers;
4. a free-text question for the knowledge base;
5. with probability ``--advisor-share``, a free-text request for a human advisor (handoff).

Each customer waits ``--think`` seconds (uniform within +-1/3) after a reply before its
next message. Real customers are slower (seconds to minutes per message), so 100 of these
weigh far more than 100 real customers; with no think time (``--think 0``) the figures are
the server's saturation throughput. A turn is one customer message; its latency runs
from sending the request to receiving the whole response; percentiles are over the
turns answered without error, ``errors`` counts the others. Only turns sent after the
first ``--warmup`` seconds and answered before the end count (said in the output).

The load generator runs on the same machine: its CPU time is reported
(``client_cpu_seconds``), and so is the server's (all its processes) per answered turn
(``server_cpu_ms_per_turn``, conversation openings included): on a machine shared with
other work, that figure moves much less than the throughput and bounds it (cores / CPU
per turn). ``--data-dir DIR`` prepares the demo data once in DIR (about a minute or two)
and copies it for each run. Not run in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ALLO = ROOT / ".venv" / "bin" / "allo"
DEMO = ROOT / "src" / "allo" / "knowledge" / "demo"
TRAINING = ROOT / "src" / "allo" / "assistant" / "data" / "intents_fr.yaml"
MODEL_CACHE = ROOT / ".allo" / "cache"

# -- what the customers say (written for this benchmark; not training examples) -----------

#: first messages, each meant to start one of the demo tutorials
OPENINGS: dict[str, tuple[str, ...]] = {
    "installation_livebox": (
        "bonjour, le livreur vient de déposer ma Livebox 6, par quoi je commence ?",
        "j'aimerais un coup de main pour brancher la box qu'on m'a envoyée",
        "comment on installe la livebox toute neuve svp",
        "je voudrais mettre en service ma nouvelle box fibre moi-même",
    ),
    "pas_internet": (
        "depuis ce midi plus aucun accès à internet chez moi",
        "la livebox a un voyant rouge et rien ne charge",
        "impossible de me connecter à internet, la box semble en panne",
        "bonjour internet est coupé à la maison depuis hier",
    ),
    "wifi": (
        "mon wifi rame énormément le soir",
        "le réseau wifi de la box est super lent dans le salon",
        "la connexion sans fil se coupe toutes les cinq minutes",
        "mon ordinateur ne trouve plus le wifi de la livebox",
    ),
    "tv_decodeur": (
        "la télé affiche pas de signal quand j'allume le décodeur",
        "écran noir sur le décodeur tv depuis ce matin",
        "le boîtier télé ne capte plus aucune chaîne",
        "ma télévision ne marche plus avec le décodeur ondea",
    ),
    "sim_esim": (
        "je viens de recevoir ma nouvelle carte sim, comment l'activer ?",
        "mon téléphone me demande le code puk, je fais quoi",
        "j'ai bloqué ma sim en tapant trois fois un mauvais code",
        "comment activer une esim sur mon smartphone",
    ),
    "facture": (
        "ma dernière facture est beaucoup plus élevée que d'habitude",
        "je ne comprends pas un montant sur ma facture de ce mois",
        "pourquoi on m'a facturé plus cher ce mois-ci ?",
        "j'ai une question sur ma facture, il y a une ligne bizarre",
    ),
    "demenagement": (
        "je change de logement le mois prochain, que devient ma box ?",
        "on déménage en juin, comment transférer mon abonnement internet",
        "je vais habiter ailleurs, je garde ma ligne comment ?",
        "transfert de ma box vers ma nouvelle adresse svp",
    ),
    "signaler_panne": (
        "je voudrais signaler une panne dans mon quartier",
        "tout l'immeuble est sans réseau, c'est une coupure générale ?",
        "il y a un incident réseau dans ma rue je crois",
        "déclarer une panne de ligne fixe",
    ),
}

#: questions for the knowledge base, on topics that no tutorial covers (what the bot did
#: with them is in the output: ``bot_actions_by_kind``)
QUESTIONS: tuple[str, ...] = (
    "combien coûte l'utilisation de mon forfait en Espagne ?",
    "je voudrais changer l'IBAN de mon prélèvement",
    "j'ai reçu un SMS bizarre qui me demande mes coordonnées bancaires, c'est vous ?",
    "où renvoyer le décodeur après la résiliation ?",
    "comment saisir le médiateur si ma réclamation n'aboutit pas ?",
    "je souhaite ajouter une option à mon forfait mobile",
    "est-ce que mon offre fonctionne en Italie sans surcoût ?",
    "combien coûte un appel depuis les États-Unis avec mon mobile ?",
    "comment me connecter à l'espace client ondea ?",
)

#: requests for a person
ADVISOR_REQUESTS: tuple[str, ...] = (
    "je préférerais parler à un conseiller",
    "est-ce qu'un humain peut reprendre la conversation ?",
    "passez-moi quelqu'un du service client s'il vous plaît",
    "je veux un vrai conseiller, pas un robot",
)

#: answers to the tutorials' open questions, chosen by a word of the question
SLOT_ANSWERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("adresse", ("12 rue des Tilleuls, 35000 Rennes", "4 avenue Jean Jaurès 69007 Lyon")),
    ("date", ("le 14 mars", "je déménage le 2 juin")),
    ("montant", ("89,90 €", "elle fait 112 euros")),
    ("numéro", ("c'est le 01 84 23 56 78", "02 98 76 54 32")),
)
FALLBACK_ANSWER = "je ne sais pas trop"


def _plain(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.lower())
    return " ".join("".join(c for c in folded if not unicodedata.combining(c)).split())


def check_not_training(training: Path) -> None:
    """Stop if a scripted message is one of the classifier's training examples."""
    examples = {
        _plain(match.group(1))
        for match in re.finditer(r"^\s+- (.+)$", training.read_text(encoding="utf-8"), re.M)
    }
    scripted = [
        *(text for texts in OPENINGS.values() for text in texts),
        *QUESTIONS,
        *ADVISOR_REQUESTS,
    ]
    copied = [text for text in scripted if _plain(text) in examples]
    if copied:
        raise SystemExit(f"these benchmark messages are training examples, rewrite them: {copied}")


# -- the server --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def prepare_data_dir(folder: Path, model_cache: Path) -> float:
    """Demo knowledge base ingested into ``folder``; returns the ingest seconds.

    Derived model files (the converted ONNX e5, the language-id model) are linked from
    ``model_cache`` when present, to skip their one-off conversion; nothing else is shared.
    """
    cache = folder / "cache"
    (cache / "models").mkdir(parents=True, exist_ok=True)
    for source in sorted((model_cache / "models").glob("multilingual-e5-small-*")):
        (cache / "models" / source.name).symlink_to(source)
    for source in sorted(model_cache.glob("py3langid-*")):
        (cache / source.name).symlink_to(source)
    started = time.perf_counter()
    subprocess.run(
        [str(ALLO), "ingest", str(DEMO / "fr"), str(DEMO / "en"), "--json"],
        env={**os.environ, "ALLO_DATA_DIR": str(folder)},
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def start_server(folder: Path, port: int, workers: int, log: Path) -> subprocess.Popen[bytes]:
    command = [str(ALLO), "serve", "--port", str(port), "--workers", str(workers)]
    env = {**os.environ, "ALLO_DATA_DIR": str(folder)}
    with log.open("wb") as handle:
        return subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT)


#: what uvicorn logs when one worker process has started its app (assistant trained)
STARTED = b"Application startup complete."


async def wait_ready(
    base: str, server: subprocess.Popen[bytes], seconds: float, log: Path, workers: int
) -> float:
    """Seconds until the chat answers and every worker has started (trained its classifier).

    Waiting for the first answer only is not enough with several workers: the customers'
    keep-alive connections, all opened at once, would then go to the first worker ready
    and stay there, leaving the others idle for the whole run.
    """
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        while time.perf_counter() - started < seconds:
            if server.poll() is not None:
                raise RuntimeError(f"the server stopped (exit {server.returncode}); see its log")
            try:
                response = await client.post("/v1/conversations")
                answered = response.status_code == 201
            except httpx.TransportError:
                answered = False
            if answered and log.read_bytes().count(STARTED) >= workers:
                return time.perf_counter() - started
            await asyncio.sleep(0.5)
    raise RuntimeError(f"the chat did not answer within {seconds:.0f} s")


def process_tree_cpu(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` and its descendants (Linux ``/proc``)."""
    try:
        tick = os.sysconf("SC_CLK_TCK")
        children: dict[int, list[int]] = {}
        times: dict[int, float] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry.name))
            times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    except (OSError, ValueError):
        return None
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += times.get(current, 0.0)
        todo.extend(children.get(current, []))
    return total


def resident_mib(pid: int) -> list[float]:
    """Resident memory (MiB) of each process of the tree, the parent first."""
    found: list[float] = []
    todo = [pid]
    while todo:
        current = todo.pop(0)
        try:
            status = Path(f"/proc/{current}/status").read_text()
            kids = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        rss = re.search(r"VmRSS:\s+(\d+) kB", status)
        if rss:
            found.append(round(int(rss.group(1)) / 1024, 1))
        todo.extend(int(kid) for kid in kids)
    return found


# -- the HTTP clients ----------------------------------------------------------------------


class Poster(Protocol):
    """POSTs JSON and returns the status and the decoded body; transport errors raise."""

    async def post(
        self, path: str, body: dict[str, Any] | None, headers: dict[str, str]
    ) -> tuple[int, Any]: ...


class HttpxPoster:
    """Through httpx (``--client httpx``): the reference, about 20 ms of CPU a request."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def post(
        self, path: str, body: dict[str, Any] | None, headers: dict[str, str]
    ) -> tuple[int, Any]:
        response = await self.client.post(path, json=body, headers=headers)
        return response.status_code, response.json()


class RawPoster:
    """One keep-alive HTTP/1.1 connection over asyncio streams (``--client raw``, default).

    The load generator shares the machine with the server: a client that spends a
    fraction of a millisecond per request leaves the CPU to the server, where httpx
    spends about 20 ms. It speaks only what this benchmark needs: JSON bodies with a
    Content-Length (what the server sends); anything else is an error.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(
        self, path: str, body: dict[str, Any] | None, headers: dict[str, str]
    ) -> tuple[int, Any]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        data = b"" if body is None else json.dumps(body).encode()
        head = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        head += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        try:
            async with asyncio.timeout(60):
                return await self._exchange(reader, writer, head, data)
        except (TimeoutError, OSError, IndexError, ValueError, asyncio.IncompleteReadError):
            self.close()
            raise

    async def _exchange(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        head: list[str],
        data: bytes,
    ) -> tuple[int, Any]:
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        status = int((await reader.readline()).split()[1])
        length, close = None, False
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and "close" in value.lower():
                close = True
        if length is None:
            raise ConnectionError("response without Content-Length")
        payload = await reader.readexactly(length)
        if close:
            self.close()
        return status, json.loads(payload) if payload else None

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


# -- the customers -------------------------------------------------------------------------


@dataclass
class Sample:
    """One request: when it left, how long it took, what it was."""

    sent: float
    seconds: float
    kind: str
    ok: bool
    error: str | None = None
    action: str | None = None


@dataclass
class Run:
    """Everything the customers recorded."""

    samples: list[Sample] = field(default_factory=list)


class Customer:
    """One simulated customer, playing conversations until the deadline."""

    def __init__(self, number: int, client: Poster, run: Run, args: argparse.Namespace) -> None:
        self.number = number
        self.client = client
        self.run = run
        self.args = args
        self.rng = random.Random(args.seed * 100_003 + number)
        self.deadline = 0.0
        self.conversations = 0

    async def _think(self) -> None:
        if self.args.think > 0:
            await asyncio.sleep(self.rng.uniform(self.args.think * 2 / 3, self.args.think * 4 / 3))

    async def _request(
        self, kind: str, path: str, body: dict[str, Any] | None, token: str | None
    ) -> dict[str, Any] | None:
        headers = {"X-Customer-Token": token} if token else {}
        sent = time.perf_counter()
        try:
            status, found = await self.client.post(path, body, headers)
        except (httpx.HTTPError, OSError, ValueError, asyncio.IncompleteReadError) as error:
            elapsed = time.perf_counter() - sent
            self.run.samples.append(Sample(sent, elapsed, kind, False, type(error).__name__))
            return None
        elapsed = time.perf_counter() - sent
        if status not in (200, 201) or not isinstance(found, dict):
            self.run.samples.append(Sample(sent, elapsed, kind, False, f"HTTP {status}"))
            return None
        self.run.samples.append(Sample(sent, elapsed, kind, True, action=found.get("action")))
        return found

    async def play(self, deadline: float) -> None:
        self.deadline = deadline
        while time.perf_counter() < deadline:
            await self.conversation()

    async def conversation(self) -> None:
        opened = await self._request("open", "/v1/conversations", None, None)
        if opened is None:
            await asyncio.sleep(0.5)
            return
        self.conversations += 1
        conversation_id, token = opened["conversation_id"], opened["customer_token"]
        path = f"/v1/conversations/{conversation_id}/messages"
        seq = 0

        async def say(kind: str, text: str | None = None, payload: str | None = None) -> Any:
            nonlocal seq
            await self._think()
            if time.perf_counter() >= self.deadline:
                return None
            seq += 1
            body = {"message_id": f"m{seq}", "seq": seq, "text": text, "payload": payload}
            return await self._request(kind, path, body, token)

        tutorial = self.rng.choice(sorted(OPENINGS))
        reply = await say("text_first", text=self.rng.choice(OPENINGS[tutorial]))
        for _ in range(self.args.max_steps):
            if reply is None or reply.get("status") != "bot":
                return
            asked = _pending_question(reply)
            if asked is None:
                break
            buttons, question = asked
            if buttons:
                reply = await say("button", payload=self.rng.choice(buttons))
            else:
                reply = await say("text_slot", text=self._slot_answer(question))
        if reply is None or reply.get("status") != "bot":
            return
        reply = await say("text_question", text=self.rng.choice(QUESTIONS))
        if reply is None or reply.get("status") != "bot":
            return
        if self.rng.random() < self.args.advisor_share:
            await say("text_advisor", text=self.rng.choice(ADVISOR_REQUESTS))

    def _slot_answer(self, question: str) -> str:
        plain = _plain(question)
        for word, answers in SLOT_ANSWERS:
            if _plain(word) in plain:
                return self.rng.choice(answers)
        return FALLBACK_ANSWER


def _pending_question(reply: dict[str, Any]) -> tuple[list[str], str] | None:
    """The buttons of the question the bot just asked (empty: free text), and its text."""
    turns = [t for t in reply.get("turns", []) if t.get("role") == "assistant"]
    for index in range(len(turns) - 1, -1, -1):
        payload = turns[index].get("payload") or {}
        if payload.get("kind") == "buttons":
            buttons = [b["payload"] for b in payload.get("buttons", [])]
            if not buttons and not payload.get("free_text"):
                return None
            question = " ".join(t.get("text", "") for t in turns[:index])
            return buttons, question
    return None


def _ms(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(np.array(values) * 1000.0, q)), 1) if values else None


async def load(base: str, args: argparse.Namespace, server_pid: int) -> dict[str, Any]:
    run = Run()
    limits = httpx.Limits(max_connections=args.customers + 8, max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        host, port = base.removeprefix("http://").split(":")

        def poster() -> Poster:
            return HttpxPoster(client) if args.client == "httpx" else RawPoster(host, int(port))

        customers = [Customer(n, poster(), run, args) for n in range(args.customers)]
        started = time.perf_counter()
        measure_from = started + args.warmup
        deadline = measure_from + args.duration
        tasks = [asyncio.create_task(c.play(deadline)) for c in customers]
        await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
        cpu_client_0 = resource.getrusage(resource.RUSAGE_SELF)
        cpu_server_0 = process_tree_cpu(server_pid)
        await asyncio.sleep(max(0.0, deadline - time.perf_counter()))
        cpu_client_1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu_server_1 = process_tree_cpu(server_pid)
        memory = resident_mib(server_pid)
        await asyncio.gather(*tasks)  # the turns in flight finish (and are not counted)
        for customer in customers:
            if isinstance(customer.client, RawPoster):
                customer.client.close()
    window = [s for s in run.samples if measure_from <= s.sent and s.sent + s.seconds <= deadline]
    turns = [s for s in window if s.kind != "open"]
    done = [s.seconds for s in turns if s.ok]
    kinds = Counter(s.kind for s in turns)
    text_turns = sum(n for kind, n in kinds.items() if kind.startswith("text"))
    opens = [s.seconds for s in window if s.kind == "open" and s.ok]
    client_cpu = (cpu_client_1.ru_utime + cpu_client_1.ru_stime) - (
        cpu_client_0.ru_utime + cpu_client_0.ru_stime
    )
    server_cpu = (
        None if cpu_server_0 is None or cpu_server_1 is None else cpu_server_1 - cpu_server_0
    )
    return {
        "turns": len(turns),
        "turns_per_second": round(len(done) / args.duration, 1),
        "p50_ms": _ms(done, 50),
        "p95_ms": _ms(done, 95),
        "p99_ms": _ms(done, 99),
        "errors": sum(1 for s in window if not s.ok),
        "error_kinds": dict(Counter(str(s.error) for s in window if not s.ok)),
        "customers": args.customers,
        "mix": {
            "text_share": round(text_turns / max(len(turns), 1), 3),
            "button_share": round(kinds["button"] / max(len(turns), 1), 3),
            "turns_by_kind": dict(sorted(kinds.items())),
            "bot_actions_by_kind": {
                kind: dict(
                    sorted(Counter(str(s.action) for s in turns if s.kind == kind and s.ok).items())
                )
                for kind in sorted(kinds)
            },
            "advisor_share_asked": args.advisor_share,
        },
        "p95_ms_by_kind": {
            kind: _ms([s.seconds for s in turns if s.kind == kind and s.ok], 95)
            for kind in sorted(kinds)
        },
        "conversations_opened": len(opens),
        "open_p50_ms": _ms(opens, 50),
        "open_p95_ms": _ms(opens, 95),
        "duration_seconds": args.duration,
        "warmup_seconds_excluded": args.warmup,
        "think_time_seconds": args.think,
        "client": args.client,
        "client_cpu_seconds": round(client_cpu, 1),
        "server_cpu_seconds": None if server_cpu is None else round(server_cpu, 1),
        "server_cpu_ms_per_turn": (
            None if server_cpu is None or not done else round(1000 * server_cpu / len(done), 1)
        ),
        "server_rss_mib": memory,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100)
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds excluded first")
    parser.add_argument("--think", type=float, default=0.75, help="seconds between turns")
    parser.add_argument("--max-steps", type=int, default=10, help="tutorial answers at most")
    parser.add_argument("--advisor-share", type=float, default=0.2)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw")
    parser.add_argument("--model-cache", type=Path, default=MODEL_CACHE)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="prepared folder to reuse: made (demo ingested) on first use, copied each run",
    )
    parser.add_argument("--keep", action="store_true", help="keep the run's folder and log")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.customers < 1 or args.duration <= 0 or args.warmup < 0 or args.think < 0:
        parser.error("--customers >= 1, --duration > 0, --warmup >= 0, --think >= 0")
    if not ALLO.exists():
        parser.error(f"{ALLO} is missing: install the project first (make install)")
    check_not_training(TRAINING)

    folder = Path(tempfile.mkdtemp(prefix="allo-chat-load-"))
    server: subprocess.Popen[bytes] | None = None
    try:
        if args.data_dir is None:
            ingest_seconds: float | None = prepare_data_dir(folder, args.model_cache)
        else:
            if not (args.data_dir / "allo.db").exists():
                prepare_data_dir(args.data_dir, args.model_cache)
            ingest_seconds = None  # prepared earlier: not measured by this run
            shutil.copytree(args.data_dir, folder, symlinks=True, dirs_exist_ok=True)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = folder / "server.log"
        server = start_server(folder, port, args.workers, log)
        ready_seconds = asyncio.run(wait_ready(base, server, 300, log, args.workers))
        result = asyncio.run(load(base, args, server.pid))
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        if args.keep:
            print(f"data folder and server log kept in {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    result["server"] = {
        "command": f"allo serve --workers {args.workers}",
        "workers": args.workers,
        "database": "sqlite (WAL)",
        "embedder": "onnx e5 (default)",
        "llm": None,
        "ready_seconds": round(ready_seconds, 1),
        "demo_ingest_seconds": None if ingest_seconds is None else round(ingest_seconds, 1),
    }
    result["targets"] = {
        "turns_per_second_min": 100,
        "p95_ms_max": 300,
        "met": bool(
            result["turns_per_second"] >= 100
            and result["p95_ms"] is not None
            and result["p95_ms"] <= 300
        ),
    }
    result["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    result["date"] = datetime.now(UTC).strftime("%Y-%m-%d")
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return
    mix = result["mix"]
    print(
        f"{result['customers']} customers, {args.duration:.0f} s measured after "
        f"{args.warmup:.0f} s of warm-up (excluded), think time ~{args.think} s, "
        f"{args.workers} worker(s)"
    )
    print(
        f"turns: {result['turns']} ({result['turns_per_second']}/s), "
        f"p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, p99 {result['p99_ms']} ms, "
        f"errors {result['errors']}"
    )
    print(
        f"mix: {mix['text_share']:.0%} free text, {mix['button_share']:.0%} buttons "
        f"{mix['turns_by_kind']}"
    )
    print(f"CPU: server {result['server_cpu_seconds']} s, client {result['client_cpu_seconds']} s")
    print(f"targets met: {result['targets']['met']}")


if __name__ == "__main__":
    main()
