// The CALI console page: Alpine.js state, Chart.js charts, server-sent events for live updates.
// Every URL is relative to the page, so the console works under any route prefix (/console locally).
"use strict";

const COLORS = {TRACE: "#9aa5b1", DEBUG: "#7b8794", INFO: "#3e7cb1", WARN: "#e5a00d", ERROR: "#d64545", FATAL: "#7a0c2e"};
// Chart instances live outside Alpine's reactive state: wrapping one in a proxy recurses without end.
const CHARTS = {};
const PALETTE = ["#3e7cb1", "#d64545", "#e5a00d", "#2f9e44", "#7048e8", "#0c8599", "#e8590c", "#5c7cfa", "#a61e4d", "#495057"];

function consoleApp() {
  return {
    page: "incidents", error: "", live: false, needToken: false, token: "", busy: false,
    meta: {levels: [], categories: []},
    filters: {status: "", service: "", q: ""}, incidents: [], incident: null,
    resolution: {note: "", category: ""},
    trendMinutes: 60,
    logQuery: {q: "", service: "", level: "", minutes: "60"}, logs: {rows: [], total: 0, next_cursor: null},
    health: {shards: [], trackers: [], alerter: null, totals: {}},

    async start() {
      window.addEventListener("hashchange", () => this.route());
      try { this.meta = await this.get("api/meta"); } catch (e) { return; }
      this.route();
      this.listen();
    },

    async get(url, options) {
      const resp = await fetch(url, Object.assign({credentials: "same-origin"}, options || {}));
      if (resp.status === 401) { this.needToken = true; throw new Error("token needed"); }
      const body = await resp.json().catch(() => null);
      if (!resp.ok) {
        const detail = body && body.detail ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)) : resp.statusText;
        this.error = `${resp.status}: ${detail}`;
        throw new Error(this.error);
      }
      this.error = "";
      return body;
    },

    saveToken() {
      document.cookie = `cali_console_token=${encodeURIComponent(this.token)}; path=/; SameSite=Strict`;
      this.needToken = false;
      this.start();
    },

    go(hash) { window.location.hash = hash; },

    route() {
      const hash = window.location.hash || "#/incidents";
      const [, page, ...rest] = hash.split("/");
      this.page = page || "incidents";
      if (this.page === "incident") { this.loadIncident(decodeURIComponent(rest.join("/"))); }
      else if (this.page === "trends") { this.loadTrends(); }
      else if (this.page === "logs") { this.searchLogs(); }
      else if (this.page === "health") { this.loadHealth(); }
      else { this.page = "incidents"; this.loadIncidents(); }
    },

    refresh() {  // a change arrived: reload what is on screen
      if (this.page === "incidents") this.loadIncidents();
      else if (this.page === "incident" && this.incident) this.loadIncident(this.incident.incident_key, true);
      else if (this.page === "trends") this.loadTrends();
      else if (this.page === "health") this.loadHealth();
    },

    listen() {
      const source = new EventSource("api/events", {withCredentials: true});
      source.addEventListener("open", () => { this.live = true; });
      source.addEventListener("error", () => { this.live = false; });
      source.addEventListener("change", () => { this.live = true; this.refresh(); });
      setInterval(() => { if (this.page === "health") this.loadHealth(); }, 5000);
    },

    async loadIncidents() {
      const p = new URLSearchParams(this.filters);
      this.incidents = await this.get(`api/incidents?${p}`).catch(() => this.incidents);
    },

    async loadIncident(key, keepForm) {
      this.incident = await this.get(`api/incident?key=${encodeURIComponent(key)}`).catch(() => null);
      if (!keepForm && this.incident) {
        this.resolution = {note: "", category: (this.incident.analysis && this.incident.analysis.category) || ""};
      }
    },

    async resolve() {
      this.busy = true;
      try {
        this.incident = Object.assign(await this.get(`api/incident/resolve?key=${encodeURIComponent(this.incident.incident_key)}`, {
          method: "POST", headers: {"Content-Type": "application/json"},
          body: JSON.stringify({note: this.resolution.note, category: this.resolution.category}),
        }), {samples: this.incident.samples, similar: this.incident.similar});
      } catch (e) { /* shown in the error banner */ }
      this.busy = false;
    },

    async searchLogs(more) {
      const q = Object.assign({}, this.logQuery, {limit: 100});
      if (!q.minutes) delete q.minutes;
      if (more && this.logs.next_cursor) q.cursor = this.logs.next_cursor;
      const page = await this.get(`api/logs?${new URLSearchParams(q)}`).catch(() => null);
      if (!page) return;
      this.logs = more ? {rows: this.logs.rows.concat(page.rows), total: page.total, next_cursor: page.next_cursor} : page;
    },

    async loadTrends() {
      const [byLevel, byService] = await Promise.all([
        this.get(`api/trend?by=level&minutes=${this.trendMinutes}`),
        this.get(`api/trend?by=service&level=WARN,ERROR,FATAL&minutes=${this.trendMinutes}`),
      ]).catch(() => [null, null]);
      if (byLevel) this.draw("trend-level", byLevel, (name) => COLORS[name]);
      if (byService) this.draw("trend-service", byService, (name, i) => PALETTE[i % PALETTE.length]);
    },

    draw(id, trend, color) {
      const labels = trend.buckets.map((b) => new Date(b).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"}));
      const datasets = Object.entries(trend.series).map(([name, data], i) => ({
        label: name, data, backgroundColor: color(name, i), borderColor: color(name, i), stack: "s"}));
      const canvas = document.getElementById(id);
      canvas.dataset.points = String(datasets.reduce((n, d) => n + d.data.reduce((a, b) => a + b, 0), 0));
      if (CHARTS[id]) { CHARTS[id].data = {labels, datasets}; CHARTS[id].update("none"); return; }
      CHARTS[id] = new Chart(canvas, {type: "bar", data: {labels, datasets},
        options: {animation: false, responsive: true, scales: {x: {stacked: true}, y: {stacked: true, beginAtZero: true}},
                  plugins: {legend: {position: "bottom"}}}});
    },

    async loadHealth() {
      this.health = await this.get("api/health").catch(() => this.health);
    },

    when(iso) {
      if (!iso) return "–";
      const d = new Date(iso);
      return isNaN(d) ? iso : d.toLocaleString([], {month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit"});
    },
  };
}
