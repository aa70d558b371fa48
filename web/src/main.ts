// mo web console: hash routes #/login, #/devices, #/console/NAME, #/log/NAME, #/events, #/gang,
// #/discover (admins).
import { current, loadMe, logout, may, onExpired } from "./api";
import { discoverPage } from "./discover";
import { closeAll, closeTab, consoleNames, showConsoles } from "./consoles";
import { Cleanup, devicesPage, eventsPage, gangPage, logPage, loginPage, notFound } from "./pages";
import { termsFor, MAX_PENDING } from "./term";
import { clear, startEvents, stopEvents, toast } from "./ui";

let cleanup: Cleanup | null = null;
let afterLogin = "#/devices";
let loginReason = "";

function main(): HTMLElement {
  return document.getElementById("main") as HTMLElement;
}

function setNav(route: string): void {
  const top = document.getElementById("top") as HTMLElement;
  const me = current();
  top.hidden = !me;
  (document.getElementById("whoami") as HTMLElement).textContent = me ? me.user : "";
  // Discovery is for global admins only (the server refuses others anyway).
  (document.getElementById("nav-discover") as HTMLElement).hidden = !may("admin");
  for (const a of document.querySelectorAll<HTMLAnchorElement>("#nav a")) {
    const on = route.startsWith(a.getAttribute("href")?.slice(2) ?? "-");
    if (on) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function route(): void {
  const raw = location.hash.replace(/^#\/?/, "");
  const [page, ...rest] = raw.split("/");
  const arg = rest.length ? decodeURIComponent(rest.join("/")) : "";
  cleanup?.();
  cleanup = null;
  const m = main();
  // The console frame is moved, not destroyed, so open consoles survive other pages.
  for (const c of [...m.children]) if (!c.classList.contains("consoles")) c.remove();
  const frame = m.querySelector(".consoles");
  if (frame && page !== "console") frame.remove();
  if (!current() && page !== "login") {
    afterLogin = location.hash || "#/devices";
    location.hash = "#/login";
    return;
  }
  setNav(page);
  document.body.dataset.page = page || "devices";
  switch (page) {
    case "login":
      if (current()) {
        location.hash = afterLogin;
        return;
      }
      cleanup = loginPage(m, loginReason, () => {
        loginReason = "";
        startEvents();
        location.hash = afterLogin === "#/login" ? "#/devices" : afterLogin;
      });
      break;
    case "":
    case "devices":
      cleanup = devicesPage(m);
      break;
    case "console":
      showConsoles(m, arg || undefined);
      break;
    case "log":
      cleanup = arg ? logPage(m, arg) : notFound(m, "Which log? Open one from the devices page.");
      break;
    case "events":
      cleanup = eventsPage(m);
      break;
    case "gang":
      cleanup = gangPage(m, arg ? arg.split(",") : consoleNames());
      break;
    case "discover":
      cleanup = discoverPage(m);
      break;
    default:
      cleanup = notFound(m, `No page ${page}.`);
  }
  document.title = `mo — ${page || "devices"}${arg ? ` ${arg}` : ""}`;
}

function expired(): void {
  if (document.body.dataset.page === "login") return;
  stopEvents();
  closeAll();
  loginReason = "Your session ended; log in again.";
  afterLogin = location.hash || "#/devices";
  clear(main());
  location.hash = "#/login";
  route();
}

async function boot(): Promise<void> {
  onExpired(expired);
  (document.getElementById("logout") as HTMLButtonElement).addEventListener("click", async () => {
    try {
      await logout();
    } catch (e) {
      toast(`logout: ${(e as Error).message}`, "error");
    }
    stopEvents();
    closeAll();
    loginReason = "Logged out.";
    afterLogin = "#/devices";
    location.hash = "#/login";
    route();
  });
  try {
    await loadMe();
    startEvents();
  } catch {
    /* not logged in */
  }
  window.addEventListener("hashchange", route);
  route();
  document.body.dataset.ready = "1";
}

// Hooks for the browser tests and the bench (read-only views of the page's state).
(window as unknown as { __mo: Record<string, unknown> }).__mo = {
  termText: (name: string) => termsFor(name).map((t) => t.text()).join("\n"),
  termRole: (name: string) => termsFor(name)[0]?.role ?? "",
  termFirstDrawAt: (name: string) => termsFor(name)[0]?.firstDrawAt ?? 0,
  /** Type S into NAME's console and resolve with the ms until byte ECHO came back drawn. */
  termEcho: async (name: string, s: string, echo: string) => {
    const t = termsFor(name)[0];
    if (!t) return -1;
    const t0 = performance.now();
    const done = t.probe(echo.charCodeAt(0));
    t.sendText(s);
    return (await done) - t0;
  },
  closeTab: (name: string) => closeTab(name),
  selectAll: (name: string) => termsFor(name)[0]?.term.selectAll(),
  termPending: (name: string) => termsFor(name)[0]?.pending() ?? 0,
  termMissed: (name: string) => termsFor(name)[0]?.missedTotal ?? 0,
  termStats: (name: string) => {
    const t = termsFor(name)[0];
    return t ? { msgs: t.msgs, bytes: t.bytes, missed: t.missedTotal, pending: t.pending(), ...t.debug() } : null;
  },
  termSend: (name: string, s: string) => termsFor(name)[0]?.sendText(s),
  maxPending: MAX_PENDING,
  me: () => current(),
};

void boot();
