// The discover page (#/discover, admins only): probe addresses from the daemon's host with
// POST /api/v1/discover, show what answered and the plan, apply it after a confirmation.
import { ApiError, enc, json, may } from "./api";
import type { Cleanup } from "./pages";
import { clear, confirmDialog, h, toast } from "./ui";

/** One finding on an address: `kind` (`ipmi`, `redfish`, `snmp`, `ssh`, `telnet`, `other`) and
 * what the probe read (mo-drivers' `Found`). */
interface Found {
  kind: string;
  port?: number;
  [key: string]: unknown;
}

interface Report {
  hosts: Array<{ address: string; found: Found[] }>;
  silent: string[];
  plan: string[];
  notes: string[];
  applied: boolean;
}

const str = (v: unknown): string => (typeof v === "string" ? v : v === undefined || v === null ? "" : String(v));
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** What a finding is and its details, as `mo discover` prints them. */
function describe(f: Found): { transport: string; what: string; details: string } {
  switch (f.kind) {
    case "ipmi": {
      const suites = list(f.cipher_suites).join(",");
      const auth = list(f.auth_types).join(",");
      return {
        transport: "udp",
        what: "IPMI BMC",
        details: `IPMI ${f.ipmi20 ? "2.0" : "1.5 only"}${suites ? `; cipher suites ${suites}` : ""}${auth ? `; 1.5 auth ${auth}` : ""}`,
      };
    }
    case "redfish": {
      const systems = list(f.systems)
        .map((s) => {
          const o = (s ?? {}) as Record<string, unknown>;
          return `system ${str(o.id)}: ${str(o.name)}${o.power_state ? `, power ${str(o.power_state)}` : ""}`;
        })
        .join("; ");
      return {
        transport: "tcp",
        what: "Redfish",
        details: [`${f.tls ? "https" : "http"} Redfish ${str(f.version)}`, `${str(f.vendor)} ${str(f.product)}`.trim(), systems, str(f.note)].filter((x) => x).join("; "),
      };
    }
    case "snmp": {
      const outlets = list(f.outlets).map(str);
      return {
        transport: "udp",
        what: f.profile ? `PDU (${str(f.profile)})` : "SNMP agent",
        details: `${f.profile ? `${outlets.length} outlets: ${outlets.slice(0, 8).join(", ")}${outlets.length > 8 ? ", …" : ""}; ` : ""}sysDescr "${str(f.sys_descr)}"`,
      };
    }
    case "ssh":
      return { transport: "tcp", what: "SSH", details: str(f.banner) };
    case "telnet":
      return { transport: "tcp", what: f.rfc2217 ? "serial port (RFC 2217)" : "telnet", details: str(f.banner) };
    default:
      return { transport: str(f.transport) || "tcp", what: "unrecognised", details: str(f.what) };
  }
}

/** The plan lines about ADDRESS (its address or the dashed form in a device name). */
function linesFor(plan: string[], address: string): string[] {
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const re = new RegExp(`(^|[^0-9.])(${esc(address)}|${esc(address.replace(/[.:]/g, "-"))})(?![0-9])`);
  return plan.filter((l) => re.test(l));
}

export function discoverPage(main: HTMLElement): Cleanup {
  main.append(h("div", { class: "pagehead" }, h("h1", {}, "Discover")));
  if (!may("admin")) {
    main.append(
      h("p", { class: "error", role: "alert", id: "discover-refused" }, "Discovery needs admin rights (admin on the group all): ask an administrator."),
    );
    return () => {};
  }
  const targets = h("input", { id: "targets", name: "targets", required: true, placeholder: "10.0.0.10-10.0.0.40 10.0.1.0/24 10.0.2.5", size: 40 });
  const ports = h("input", { id: "ports", name: "ports", placeholder: "ipmi,snmp,redfish:443,redfish:80,ssh,telnet", size: 32 });
  const timeout = h("input", { id: "timeout", name: "timeout", placeholder: "1s", size: 6 });
  const probe = h("button", { type: "submit", id: "probe" }, "Probe");
  const status = h("p", { id: "discover-status", role: "status", "aria-live": "polite" });
  const error = h("p", { class: "error", role: "alert", id: "discover-error" });
  const result = h("section", { id: "discover-result", "aria-label": "Discovery result" });
  const form = h(
    "form",
    { class: "discover" },
    h("div", { class: "row" }, h("label", { for: "targets" }, "Targets"), targets),
    h("div", { class: "row" }, h("label", { for: "ports" }, "Ports"), ports, h("label", { for: "timeout" }, "Timeout"), timeout, probe),
    h("p", { class: "count" }, "Addresses, CIDR ranges or FIRST-LAST ranges (at most 4096 addresses), separated by spaces or commas. The daemon probes from its own host; empty ports and timeout take mo discover's defaults."),
  );
  main.append(form, status, error, result);
  let busy = false;
  let gone = false;

  const body = (apply: boolean): Record<string, unknown> => {
    const b: Record<string, unknown> = { targets: targets.value.split(/[\s,]+/).filter((t) => t) };
    if (ports.value.trim()) b.ports = ports.value.trim();
    if (timeout.value.trim()) b.timeout = timeout.value.trim();
    if (apply) b.apply = true;
    return b;
  };

  const run = async (apply: boolean, sent: Record<string, unknown>): Promise<Report | null> => {
    busy = true;
    probe.disabled = true;
    for (const b of result.querySelectorAll("button")) (b as HTMLButtonElement).disabled = true;
    error.textContent = "";
    clear(status);
    const n = (sent.targets as string[]).join(" ");
    status.append(h("progress", { "aria-label": "Probing" }), ` ${apply ? "Applying the plan for" : "Probing"} ${n} from the daemon's host…`);
    document.body.dataset.discover = "running";
    try {
      const r = await json<Report>("POST", "/api/v1/discover", sent);
      status.textContent = "";
      document.body.dataset.discover = apply ? "applied" : "done";
      return r;
    } catch (e) {
      const ae = e as ApiError;
      status.textContent = "";
      error.textContent =
        ae.status === 403
          ? `Refused (403): discovery needs admin rights (admin on the group all). ${ae.message}`
          : ae.status === 400
            ? `The request was refused (400): ${ae.message}`
            : `Discovery failed (${ae.status ?? "network"}): ${ae.message}`;
      document.body.dataset.discover = "error";
      return null;
    } finally {
      busy = false;
      probe.disabled = false;
      for (const b of result.querySelectorAll("button")) (b as HTMLButtonElement).disabled = false;
    }
  };

  const show = (r: Report, sent: Record<string, unknown>) => {
    if (gone) return;
    clear(result);
    const answered = r.hosts.length;
    result.append(
      h("p", { class: "summary", id: "discover-summary" }, `probed: ${answered} answered, ${r.silent.length} silent${r.silent.length ? ` (${r.silent.slice(0, 16).join(", ")}${r.silent.length > 16 ? `, … ${r.silent.length - 16} more` : ""})` : ""}`),
    );
    const tbody = h("tbody");
    for (const host of r.hosts) {
      const lines = linesFor(r.plan, host.address);
      const found = host.found.length ? host.found : [{ kind: "other", what: "answered, nothing recognised" } as Found];
      found.forEach((f, i) => {
        const d = describe(f);
        tbody.append(
          h(
            "tr",
            { "data-address": host.address, "data-kind": f.kind, class: f.kind === "other" ? "unrecognised" : undefined },
            i === 0 ? h("th", { scope: "row", rowspan: found.length }, host.address) : null,
            h("td", {}, f.port !== undefined ? `${d.transport}/${f.port}` : ""),
            h("td", {}, d.what),
            h("td", { class: "text" }, d.details),
            i === 0 ? h("td", { class: "text plan", rowspan: found.length }, lines.length ? lines.join("\n") : "nothing") : null,
          ),
        );
      });
    }
    for (const a of r.silent) {
      tbody.append(h("tr", { "data-address": a, "data-kind": "silent", class: "silent" }, h("th", { scope: "row" }, a), h("td", {}, ""), h("td", {}, "silent"), h("td", {}, "answered nothing"), h("td", {}, "nothing")));
    }
    result.append(
      h(
        "div",
        { class: "tablewrap" },
        h(
          "table",
          { class: "discover" },
          h("caption", {}, "What answered"),
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Address"), h("th", { scope: "col" }, "Port"), h("th", { scope: "col" }, "Found"), h("th", { scope: "col" }, "Details"), h("th", { scope: "col" }, r.applied ? "mo added / changed" : "mo would add / change"))),
          tbody,
        ),
      ),
    );
    result.append(h("h3", {}, r.applied ? "Applied" : "Plan"));
    // The plan's changes (`+ …`, `~ …`, `- …`); its other lines (`no changes`) are the daemon's
    // summary, not changes.
    const changes = r.plan.filter((l) => /^[+~-] /.test(l));
    if (changes.length) {
      const ol = h("ol", { class: "log plan", id: "discover-plan" });
      for (const l of changes) {
        const m = /^\+ device (\S+)/.exec(l);
        ol.append(h("li", { class: l.startsWith("+") ? "add" : "change" }, r.applied && m ? h("a", { href: `#/console/${enc(m[1])}` }, l) : l));
      }
      result.append(ol);
    } else {
      result.append(h("p", { class: "empty", id: "discover-plan" }, "No changes: nothing to add or change."));
    }
    if (r.notes.length) {
      result.append(h("h3", {}, `Not added: ${r.notes.length}`), h("ul", { class: "notes" }, ...r.notes.map((n) => h("li", {}, n))));
    }
    if (r.applied) {
      result.append(
        h("p", { class: "applied", id: "discover-applied", role: "status" }, changes.length ? `Applied ${changes.length} change${changes.length === 1 ? "" : "s"}; the new consoles start now.` : "Nothing to apply: the store already has all of it."),
      );
      return;
    }
    if (!changes.length) return;
    const apply = h("button", { type: "button", class: "danger", id: "apply" }, "Apply…");
    apply.addEventListener("click", async () => {
      if (busy) return;
      const ok = await confirmDialog("Apply the plan?", `${changes.length} change${changes.length === 1 ? "" : "s"} (${changes.filter((l) => l.startsWith("+")).length} added) go into the store in one transaction and the new consoles start. The addresses are probed again first.`, "Apply");
      if (!ok) return;
      const again = { ...sent, apply: true };
      const done = await run(true, again);
      if (done) {
        show(done, again);
        const n = done.plan.filter((l) => /^[+~-] /.test(l)).length;
        toast(`discover: ${n} change${n === 1 ? "" : "s"} applied`);
      }
    });
    result.append(h("div", { class: "row" }, apply));
  };

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (busy) return;
    const sent = body(false);
    if (!(sent.targets as string[]).length) {
      error.textContent = "Give at least one target: an address, a CIDR range or FIRST-LAST.";
      return;
    }
    clear(result);
    const r = await run(false, sent);
    if (r) show(r, sent);
  });
  targets.focus();
  return () => {
    gone = true;
  };
}
