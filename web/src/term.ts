// One console in the browser: an xterm.js terminal attached over the WebSocket attach API
// (docs/api.md "Console attach"). Output is written in batches on animation frames with a bounded
// backlog: a flooding console never freezes the page, it skips and says "missed N bytes".
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import { WebLinksAddon } from "@xterm/addon-web-links";
import { current, enc, wsUrl } from "./api";

/** Bytes waiting to be drawn (ours plus xterm's own queue) before we start skipping. */
export const MAX_PENDING = 2 * 1024 * 1024;
/** Bytes handed to xterm and not yet parsed, at most: the rest waits in our queue, where it can be skipped. */
/** Room kept for the "missed N bytes" marker, so the backlog never exceeds MAX_PENDING. */
const MARK_ROOM = 64;
export const XTERM_INFLIGHT = 256 * 1024;
/** Bytes handed to xterm per animation frame. */
export const FRAME_BYTES = 64 * 1024;

export interface Viewer {
  user: string;
  role: string;
  since?: string;
  origin?: string;
}

export interface TermOptions {
  device: string;
  mode: "attach" | "spy" | "force" | "join";
  replay?: number;
  fontSize?: number;
  readOnly?: boolean;
  onNotice?: (text: string, kind: "notice" | "error") => void;
  onState?: (state: string) => void;
  onRole?: (role: string) => void;
  onWho?: (viewers: Viewer[]) => void;
  onClosed?: (reason: string) => void;
  onMissed?: (bytes: number, total: number) => void;
}

const registry = new Map<string, ConsoleTerm[]>();

/** Every open terminal for a device (tests read them through window.__mo). */
export function termsFor(device: string): ConsoleTerm[] {
  return registry.get(device) ?? [];
}

export class ConsoleTerm {
  readonly term: Terminal;
  readonly fit: FitAddon;
  ws: WebSocket | null = null;
  role = "";
  state = "connecting";
  closed = false;
  /** Bytes skipped in this page (backlog overflow) plus those the daemon said we missed. */
  missedTotal = 0;
  /** Time the first output byte was drawn after the socket opened (bench). */
  firstDrawAt = 0;
  openedAt = 0;
  /** Output messages and bytes received (bench). */
  msgs = 0;
  bytes = 0;
  private queue: Array<Uint8Array | (() => void)> = [];
  private probes: Array<{ needle: number; resolve: (t: number) => void }> = [];
  private queued = 0;
  private inflight = 0;
  private skipping = 0;
  private scheduled = false;
  private resizeObs: ResizeObserver | null = null;
  private decoder = new TextEncoder();

  constructor(
    readonly el: HTMLElement,
    readonly opts: TermOptions,
  ) {
    this.term = new Terminal({
      fontSize: opts.fontSize ?? 14,
      scrollback: 5000,
      convertEol: false,
      cursorBlink: !opts.readOnly,
      disableStdin: !!opts.readOnly,
      allowProposedApi: false,
      fontFamily: "ui-monospace, 'DejaVu Sans Mono', 'Liberation Mono', monospace",
      theme: { background: "#101418" },
    });
    this.fit = new FitAddon();
    this.term.loadAddon(this.fit);
    this.term.loadAddon(new WebLinksAddon());
    this.term.open(el);
    // Ctrl+Shift+ArrowUp leaves the terminal for the page (keyboard-only use).
    this.term.attachCustomKeyEventHandler((e) => {
      if (e.type === "keydown" && e.ctrlKey && e.shiftKey && e.key === "ArrowUp") {
        (document.querySelector(".tabs button[aria-selected=true]") as HTMLElement | null)?.focus() ??
          (document.getElementById("main") as HTMLElement | null)?.focus();
        return false;
      }
      // Ctrl+Shift+C / Ctrl+Shift+V copy and paste like a desktop terminal.
      if (e.type === "keydown" && e.ctrlKey && e.shiftKey && (e.key === "C" || e.key === "c")) {
        void this.copy();
        return false;
      }
      if (e.type === "keydown" && e.ctrlKey && e.shiftKey && (e.key === "V" || e.key === "v")) {
        void this.paste();
        return false;
      }
      return true;
    });
    this.term.onData((d) => this.send(this.decoder.encode(d)));
    this.term.onBinary((d) => {
      const b = new Uint8Array(d.length);
      for (let i = 0; i < d.length; i++) b[i] = d.charCodeAt(i) & 0xff;
      this.send(b);
    });
    this.term.onResize(({ cols, rows }) => this.control({ type: "resize", cols, rows }));
    this.resizeObs = new ResizeObserver(() => this.refit());
    this.resizeObs.observe(el);
    const list = registry.get(opts.device) ?? [];
    list.push(this);
    registry.set(opts.device, list);
    this.connect(opts.mode);
  }

  refit(): void {
    if (this.closed || this.el.offsetParent === null) return;
    try {
      this.fit.fit();
    } catch {
      /* not laid out yet */
    }
  }

  connect(mode: string): void {
    const replay = this.opts.replay ?? 200;
    const url = wsUrl(`/api/v1/devices/${enc(this.opts.device)}/attach?mode=${enc(mode)}&replay=${replay}`);
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.openedAt = performance.now();
    ws.onopen = () => {
      this.refit();
      this.control({ type: "resize", cols: this.term.cols, rows: this.term.rows });
      this.control({ type: "who" });
    };
    ws.onmessage = (m) => {
      if (m.data instanceof ArrayBuffer) {
        this.msgs++;
        this.bytes += m.data.byteLength;
        this.output(new Uint8Array(m.data));
      }
      else this.frame(String(m.data));
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (!this.closed) {
        this.state = "closed";
        this.opts.onClosed?.(e.reason || `connection closed (${e.code})`);
      }
    };
  }

  private frame(data: string): void {
    let f: Record<string, unknown>;
    try {
      f = JSON.parse(data);
    } catch {
      return;
    }
    switch (f.type) {
      case "hello":
        this.setRole(String(f.role ?? ""));
        if (f.message) this.opts.onNotice?.(String(f.message), "notice");
        break;
      case "state":
        this.state = String(f.state ?? "");
        this.opts.onState?.(this.state);
        break;
      case "notice":
        if (typeof f.role === "string") {
          this.setRole(f.role);
        } else {
          // "bob forced write access; alice is now spying": the daemon demoted us.
          const m = /forced write access; (\S+) is now spying/.exec(String(f.text ?? ""));
          if (m && m[1] === current()?.user && this.role !== "spy") this.setRole("spy");
        }
        this.opts.onNotice?.(String(f.text ?? ""), "notice");
        // Someone came or went, or our role changed: ask who is on it now.
        this.control({ type: "who" });
        break;
      case "missed":
        this.missed(Number(f.bytes ?? 0));
        break;
      case "who": {
        const viewers = (f.viewers as Viewer[]) ?? [];
        // Our own role, when only this session of ours is on the console.
        const mine = viewers.filter((v) => v.user === current()?.user);
        if (mine.length === 1 && mine[0].role !== this.role) this.setRole(mine[0].role);
        this.opts.onWho?.(viewers);
        break;
      }
      case "error":
        this.opts.onNotice?.(`refused: ${String(f.message ?? f.code ?? "error")}`, "error");
        break;
      case "closed":
        this.opts.onClosed?.(String(f.reason ?? "closed"));
        break;
    }
  }

  private setRole(role: string): void {
    this.role = role;
    this.opts.onRole?.(role);
  }

  /** Queue output; drawn on the next animation frame. Skips when the backlog is full. */
  private output(b: Uint8Array): void {
    if (this.queued + this.inflight + b.length > MAX_PENDING - MARK_ROOM) {
      this.missed(b.length);
      return;
    }
    this.queue.push(b);
    this.queued += b.length;
    if (this.probes.length) {
      for (const p of this.probes.filter((x) => b.includes(x.needle))) {
        // Resolved once the bytes before it are parsed into the terminal.
        this.queue.push(() => p.resolve(performance.now()));
      }
      this.probes = this.probes.filter((x) => !b.includes(x.needle));
    }
    this.schedule();
  }

  /** Resolves with the time output holding byte NEEDLE was written into the terminal (bench). */
  probe(needle: number): Promise<number> {
    return new Promise((resolve) => this.probes.push({ needle, resolve }));
  }

  /** Bytes skipped (here or by the daemon): one marker says how many once there is room. */
  private missed(bytes: number): void {
    if (bytes <= 0) return;
    this.missedTotal += bytes;
    this.skipping += bytes;
    // In stream order when there is room; otherwise once the backlog has drained to half.
    if (this.queued + this.inflight + MARK_ROOM <= MAX_PENDING) this.markMissed();
    this.schedule();
  }

  private markMissed(): void {
    const n = this.skipping;
    this.skipping = 0;
    const mark = this.decoder.encode(`\r\n\x1b[7m[missed ${n} bytes]\x1b[0m\r\n`);
    this.queue.push(mark);
    this.queued += mark.length;
    this.opts.onMissed?.(n, this.missedTotal);
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // On the next frame; a timer too, for when frames stall (a busy compositor, a hidden tab).
    let frame = 0;
    let timer = 0;
    const run = () => {
      cancelAnimationFrame(frame);
      clearTimeout(timer);
      if (this.scheduled) this.flush();
    };
    frame = requestAnimationFrame(run);
    timer = window.setTimeout(run, 100);
  }

  private flush(): void {
    this.scheduled = false;
    if (this.closed) return;
    if (this.skipping > 0 && this.queued + this.inflight <= MAX_PENDING / 2) this.markMissed();
    // One write per frame: the chunks queued since the last frame, up to FRAME_BYTES, copied
    // into one buffer (xterm parses it in time slices of its own).
    const parts: Uint8Array[] = [];
    let size = 0;
    while (this.queue.length > 0 && size < FRAME_BYTES && this.inflight + size < XTERM_INFLIGHT) {
      const head = this.queue[0];
      if (typeof head === "function") {
        this.writeParts(parts, size);
        parts.length = 0;
        size = 0;
        this.queue.shift();
        this.term.write("", head);
        continue;
      }
      let b = head;
      if (size + b.length > FRAME_BYTES) {
        const room = FRAME_BYTES - size;
        this.queue[0] = b.subarray(room);
        b = b.subarray(0, room);
      } else {
        this.queue.shift();
      }
      this.queued -= b.length;
      parts.push(b);
      size += b.length;
    }
    this.writeParts(parts, size);
    if (this.queue.length > 0 || this.skipping > 0) this.schedule();
  }

  private writeParts(parts: Uint8Array[], size: number): void {
    if (size === 0) return;
    let data: Uint8Array;
    if (parts.length === 1) data = parts[0];
    else {
      data = new Uint8Array(size);
      let at = 0;
      for (const p of parts) {
        data.set(p, at);
        at += p.length;
      }
    }
    this.inflight += size;
    this.term.write(data, () => {
      this.inflight -= size;
      if (this.firstDrawAt === 0) {
        this.firstDrawAt = performance.now();
        this.el.dataset.firstDraw = String(this.firstDrawAt - this.openedAt);
      }
    });
  }

  send(bytes: Uint8Array): void {
    if (this.opts.readOnly) return;
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(bytes);
  }

  sendText(s: string): void {
    this.send(this.decoder.encode(s));
  }

  control(msg: Record<string, unknown>): void {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  setMode(mode: string): void {
    this.control({ type: "mode", mode });
  }

  async copy(): Promise<void> {
    const sel = this.term.getSelection();
    if (sel) await navigator.clipboard.writeText(sel);
  }

  async paste(): Promise<void> {
    const t = await navigator.clipboard.readText();
    if (t) this.term.paste(t);
  }

  /** The terminal's buffer as text (scrollback and screen), trailing blanks trimmed. */
  text(): string {
    const buf = this.term.buffer.active;
    const lines: string[] = [];
    for (let i = 0; i < buf.length; i++) lines.push(buf.getLine(i)?.translateToString(true) ?? "");
    while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
    return lines.join("\n");
  }

  /** Internal counters (tests, bench). */
  debug(): Record<string, number | boolean> {
    return { queued: this.queued, inflight: this.inflight, qlen: this.queue.length, skipping: this.skipping, scheduled: this.scheduled };
  }

  pending(): number {
    return this.queued + this.inflight;
  }

  dispose(): void {
    this.closed = true;
    this.resizeObs?.disconnect();
    const ws = this.ws;
    this.ws = null;
    ws?.close();
    this.term.dispose();
    const list = (registry.get(this.opts.device) ?? []).filter((t) => t !== this);
    if (list.length) registry.set(this.opts.device, list);
    else registry.delete(this.opts.device);
  }
}
