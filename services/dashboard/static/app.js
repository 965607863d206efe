/* Huzhu ops dashboard: plain JavaScript, no build step. Figures come from /api/* (the dashboard process),
   which asks the services with the logged-in user's token. Every shown figure keeps its raw value in
   data-value so that the browser test can compare it with the API. */
"use strict";

const TOKEN_KEY = "huzhu.dashboard.token";
const $ = (id) => document.getElementById(id);
const charts = {};

const STATUS_ZH = {submitted: "已提交", in_review: "审批中", returned: "退回补件", approved: "已核准",
  payment_failed: "支付失败", paid: "已支付", rejected: "不予补助"};
const LEVEL_ZH = {agency_point: "代办点", office: "办事处", centre: "互助中心", unit: "单位"};
const ROLE_ZH = {centre_reviewer: "互助中心", office_reviewer: "办事处", agency_reviewer: "代办点",
  finance: "财务", admin: "管理员"};
const GAP_ZH = {matched: "已对平", to_remit: "待上解", over_remitted: "多上解"};

// ---------------------------------------------------------------- Chinese number formatting
const intFmt = new Intl.NumberFormat("zh-CN", {maximumFractionDigits: 0});
const moneyFmt = new Intl.NumberFormat("zh-CN", {minimumFractionDigits: 2, maximumFractionDigits: 2});
const wanFmt = new Intl.NumberFormat("zh-CN", {minimumFractionDigits: 2, maximumFractionDigits: 2});

/** Money from a decimal string: "1,234.50元" below 10,000, "12.35万元" from 10,000 on. */
function money(value) {
  if (value === null || value === undefined) return "—";
  const n = Number(value);
  if (Math.abs(n) >= 10000) return wanFmt.format(n / 10000) + "万元";
  return moneyFmt.format(n) + "元";
}
/** Counts: "1,234" below 100,000, "12.3万" from there on. */
function count(value) {
  if (value === null || value === undefined) return "—";
  const n = Number(value);
  if (Math.abs(n) >= 100000) return new Intl.NumberFormat("zh-CN", {maximumFractionDigits: 1}).format(n / 10000) + "万";
  return intFmt.format(n);
}
function pct(value) {
  if (value === null || value === undefined) return "—";
  return new Intl.NumberFormat("zh-CN", {style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1})
    .format(Number(value));
}
function days(value) { return value === null || value === undefined ? "—" : String(value); }

function show(id, text, raw) {
  const el = $(id);
  el.textContent = text;
  el.dataset.value = raw === null || raw === undefined ? "" : String(raw);
}

// ---------------------------------------------------------------- API
function token() { return sessionStorage.getItem(TOKEN_KEY); }

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (token()) headers.Authorization = "Bearer " + token();
  const response = await fetch(path, Object.assign({}, options, {headers}));
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (response.status === 401) { logout(); throw new Error((body && body.detail) || "请重新登录。"); }
  if (!response.ok) throw new Error((body && body.detail) || ("请求失败：" + response.status));
  return body;
}

// ---------------------------------------------------------------- sortable tables
/** columns: [{key, label, num, fmt, cls}]; rows: objects. Clicking a header sorts by the raw value. */
function table(id, columns, rows, emptyText) {
  const el = $(id);
  el.replaceChildren();
  const thead = el.createTHead().insertRow();
  columns.forEach((col, index) => {
    const th = document.createElement("th");
    th.textContent = col.label;
    th.scope = "col";
    if (col.num) th.className = "num";
    th.addEventListener("click", () => sortBy(el, index, col.num));
    thead.appendChild(th);
  });
  const body = el.createTBody();
  if (!rows.length) {
    const td = body.insertRow().insertCell();
    td.colSpan = columns.length;
    td.className = "empty";
    td.textContent = emptyText || "无数据";
    return;
  }
  for (const row of rows) {
    const tr = body.insertRow();
    for (const col of columns) {
      const td = tr.insertCell();
      const raw = row[col.key];
      td.textContent = col.fmt ? col.fmt(raw, row) : (raw === null || raw === undefined ? "" : String(raw));
      td.dataset.sort = raw === null || raw === undefined ? "" : String(raw);
      td.dataset.key = col.key;
      if (col.num) td.classList.add("num");
      if (col.cls) { const extra = col.cls(raw, row); if (extra) td.classList.add(extra); }
    }
  }
}

function sortBy(tableEl, index, numeric) {
  const th = tableEl.tHead.rows[0].cells[index];
  const ascending = th.getAttribute("aria-sort") !== "ascending";
  for (const other of tableEl.tHead.rows[0].cells) other.removeAttribute("aria-sort");
  th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  const body = tableEl.tBodies[0];
  const rows = Array.from(body.rows).filter((r) => r.cells.length > 1 || !r.cells[0].classList.contains("empty"));
  rows.sort((a, b) => {
    const x = a.cells[index].dataset.sort, y = b.cells[index].dataset.sort;
    const c = numeric ? Number(x) - Number(y) : x.localeCompare(y, "zh-CN");
    return ascending ? c : -c;
  });
  rows.forEach((r) => body.appendChild(r));
}

// ---------------------------------------------------------------- charts (Chart.js, served locally)
function chart(id, config) {
  if (charts[id]) charts[id].destroy();
  config.options = Object.assign({responsive: true, maintainAspectRatio: false, animation: false}, config.options || {});
  charts[id] = new Chart($(id), config);
}

// ---------------------------------------------------------------- rendering
function render(data) {
  const e = data.enrollment, c = data.claims, p = data.payments, r = data.remittance;
  const t = e.totals;
  show("k-members", count(t.members), t.members);
  const change = t.members - t.members_previous;
  show("k-members-prev", e.previous_period ? `上期 ${count(t.members_previous)}（${change >= 0 ? "+" : ""}${count(change)}）` : "无上期数据", t.members_previous);
  show("k-fees-due", money(t.fees_due), t.fees_due);
  show("k-fees-received", "已收 " + money(t.fees_received), t.fees_received);
  if (r) {
    show("k-gap", money(r.gap), r.gap);
    show("k-remitted", "已上解 " + money(r.remitted), r.remitted);
  } else {
    show("k-gap", "—", null);
    show("k-remitted", "上解由办事处、互助中心和财务查看", null);
  }
  show("k-claims", count(c.total), c.total);
  show("k-overdue", `超期 ${count(c.overdue.count)} 件`, c.overdue.count);
  show("k-approved", money(c.aid.approved), c.aid.approved);
  show("k-paid", "已支付 " + money(p.paid.amount), p.paid.amount);
  const last = data.payout.length ? data.payout[data.payout.length - 1] : null;
  show("k-ratio", last ? pct(last.payout_ratio_to_date) : "—", last ? last.payout_ratio_to_date : null);
  show("k-ratio-note", last ? `截至 ${last.month}` : "尚无收支", null);

  // members by office and unit vs the previous period
  const units = e.units.map((u) => Object.assign({}, u, {change: u.members - u.members_previous}));
  table("t-units", [
    {key: "office", label: "办事处", fmt: (v, row) => `${row.office_name || ""} ${v}`.trim()},
    {key: "unit", label: "单位", fmt: (v, row) => `${row.name} (${v})`},
    {key: "members", label: "本期人数", num: true, fmt: count},
    {key: "members_previous", label: "上期人数", num: true, fmt: count},
    {key: "change", label: "增减", num: true, fmt: (v) => (v > 0 ? "+" : "") + count(v), cls: (v) => (v > 0 ? "up" : v < 0 ? "down" : "")},
  ], units, "本期在您的范围内没有参互单位");
  chart("chart-members", {type: "bar", data: {
    labels: e.offices.map((o) => o.name || o.office),
    datasets: [{label: "本期", data: e.offices.map((o) => o.members), backgroundColor: "#b3261e"},
               {label: "上期", data: e.offices.map((o) => o.members_previous), backgroundColor: "#9aa8b8"}]},
    options: {scales: {y: {beginAtZero: true, ticks: {precision: 0}}}}});

  // fees due, received and remitted
  if (data.remittance_offices) {
    table("t-fees", [
      {key: "office", label: "办事处", fmt: (v, row) => `${row.name} (${v})`},
      {key: "fees_due", label: "应收", num: true, fmt: money},
      {key: "fees_received", label: "已收", num: true, fmt: money},
      {key: "remitted", label: "已上解", num: true, fmt: money},
      {key: "gap", label: "差额", num: true, fmt: money, cls: (v) => (Number(v) !== 0 ? "bad" : "")},
      {key: "status", label: "状态", fmt: (v) => GAP_ZH[v] || v},
    ], data.remittance_offices, "无会费数据");
    $("fees-note").textContent = "差额 = 已收 − 已上解（办事处上解的金额须与系统数据一致）。";
  } else {
    table("t-fees", [
      {key: "unit", label: "单位", fmt: (v, row) => `${row.name} (${v})`},
      {key: "fees_due", label: "应收", num: true, fmt: money},
      {key: "fees_received", label: "已收", num: true, fmt: money},
      {key: "unpaid", label: "未缴", num: true, fmt: money, cls: (v) => (Number(v) !== 0 ? "bad" : "")},
    ], e.units, "无会费数据");
    $("fees-note").textContent = "上解由办事处办理；代办点看到所辖单位的应收和已收。";
  }

  // claims by status and level, overdue
  const statuses = Object.keys(c.by_status);
  chart("chart-status", {type: "bar", data: {labels: statuses.map((s) => STATUS_ZH[s] || s),
    datasets: [{label: "件数", data: statuses.map((s) => c.by_status[s]), backgroundColor: "#2f6db5"}]},
    options: {indexAxis: "y", plugins: {legend: {display: false}}, scales: {x: {beginAtZero: true, ticks: {precision: 0}}}}});
  table("t-levels", [
    {key: "level", label: "级别", fmt: (v) => LEVEL_ZH[v] || v},
    {key: "in_review", label: "审批中", num: true, fmt: count},
    {key: "overdue", label: "超期", num: true, fmt: count, cls: (v) => (v > 0 ? "bad" : "")},
  ], Object.keys(c.in_review_by_level).map((lv) => ({level: lv, in_review: c.in_review_by_level[lv], overdue: c.overdue.by_level[lv] || 0})));
  table("t-overdue", [
    {key: "org", label: "应办理单位"},
    {key: "current_level", label: "级别", fmt: (v) => LEVEL_ZH[v] || v},
    {key: "working_days_overdue", label: "超期工作日", num: true, cls: () => "bad"},
    {key: "due_date", label: "应办结日期"},
    {key: "aid_amount", label: "补助金额", num: true, fmt: money},
    {key: "unit", label: "会员单位"},
    {key: "claim_id", label: "申请号", fmt: (v) => v.slice(0, 8)},
  ], data.overdue || [], data.overdue ? "没有超期的申请" : "超期清单由审批人员查看");

  // each claim's clock: days from discharge to submission, final approval and payment; bureau share
  const d = c.days_to_payment, ds = c.days_to_submission, da = c.days_to_approval;
  for (const [prefix, f] of [["ds", ds], ["da", da], ["d", d]]) {
    show(`${prefix}-median`, days(f.median), f.median);
    show(`${prefix}-p90`, days(f.p90), f.p90);
    show(`${prefix}-count`, count(f.count), f.count);
  }
  chart("chart-days", {type: "bar", data: {
    labels: d.buckets.map((b) => (b.to === null ? `${b.from}天以上` : `${b.from}–${b.to - 1}天`)),
    datasets: [
      {label: "提交", data: ds.buckets.map((b) => b.count), backgroundColor: "#2f6db5"},
      {label: "终审批准", data: da.buckets.map((b) => b.count), backgroundColor: "#f0a202"},
      {label: "支付", data: d.buckets.map((b) => b.count), backgroundColor: "#1f7a3a"}]},
    options: {scales: {y: {beginAtZero: true, ticks: {precision: 0}}}}});
  show("b-share", pct(c.bureau.share), c.bureau.share);
  show("b-count", count(c.bureau.from_bureau), c.bureau.from_bureau);
  show("b-total", count(c.bureau.claims), c.bureau.claims);
  $("b-note").textContent = "口径：" + c.bureau.definition + "。其余为单位经办人录入的结算单。";

  // payout by month
  chart("chart-payout", {type: "bar", data: {labels: data.payout.map((m) => m.month), datasets: [
    {label: "核准补助", data: data.payout.map((m) => Number(m.approved)), backgroundColor: "#f0a202", yAxisID: "y"},
    {label: "已支付", data: data.payout.map((m) => Number(m.paid)), backgroundColor: "#b3261e", yAxisID: "y"},
    {label: "会费收入", data: data.payout.map((m) => Number(m.fees_received)), backgroundColor: "#2f6db5", yAxisID: "y"},
    {label: "累计赔付率", type: "line", data: data.payout.map((m) => m.payout_ratio_to_date), borderColor: "#1d2733", yAxisID: "ratio"},
  ]}, options: {scales: {y: {ticks: {callback: (v) => money(v)}},
    ratio: {position: "right", min: 0, grid: {drawOnChartArea: false}, ticks: {callback: (v) => pct(v)}}}}});
  table("t-payout", [
    {key: "month", label: "月份"},
    {key: "approved", label: "核准补助", num: true, fmt: money},
    {key: "paid", label: "已支付", num: true, fmt: money},
    {key: "fees_received", label: "会费收入", num: true, fmt: money},
    {key: "payout_ratio_to_date", label: "累计赔付率", num: true, fmt: pct},
  ], data.payout, "本期尚无收支");

  // payments
  show("p-batches", count(p.awaiting_release.batches), p.awaiting_release.batches);
  show("p-awaiting", count(p.awaiting_release.instructions), p.awaiting_release.instructions);
  show("p-awaiting-amount", money(p.awaiting_release.amount), p.awaiting_release.amount);
  show("p-pending", count(p.pending.instructions), p.pending.instructions);
  show("p-failed", count(p.failed_to_fix.count), p.failed_to_fix.count);
  show("p-recoveries", count(p.recoveries_due.count), p.recoveries_due.count);
  show("p-recoveries-amount", money(p.recoveries_due.amount), p.recoveries_due.amount);
  table("t-failed", [
    {key: "claim_id", label: "申请号", fmt: (v) => v.slice(0, 8)},
    {key: "attempt", label: "第几次", num: true},
    {key: "amount", label: "金额", num: true, fmt: money},
    {key: "reason", label: "银行退回原因"},
  ], p.failed_to_fix.items, "没有待处理的失败支付");
  table("t-recoveries", [
    {key: "claim_id", label: "申请号", fmt: (v) => v.slice(0, 8)},
    {key: "outstanding", label: "待追回", num: true, fmt: money},
    {key: "reason", label: "原因"},
  ], p.recoveries_due.items, "没有待追回款项");
}

function renderHealth(health) {
  const rows = health.services.map((s) => Object.assign({}, s, {
    lag_total: s.up ? Object.values(s.consumer_lag).reduce((a, b) => a + b, 0) : null,
    lag_topics: s.up ? Object.entries(s.consumer_lag).map(([k, v]) => `${k}: ${v}`).join("；") : "",
  }));
  table("t-health", [
    {key: "service", label: "服务"},
    {key: "up", label: "状态", fmt: (v) => (v ? "正常" : "无法访问"), cls: (v) => (v ? "up" : "bad")},
    {key: "outbox_backlog", label: "待发事件", num: true, fmt: count, cls: (v) => (v > 0 ? "bad" : "")},
    {key: "lag_total", label: "消费积压", num: true, fmt: count},
    {key: "lag_topics", label: "按主题"},
    {key: "events_dead_lettered", label: "死信", num: true, fmt: count, cls: (v) => (v > 0 ? "bad" : "")},
    {key: "events_applied", label: "已处理事件", num: true, fmt: count},
  ], rows);
}

// ---------------------------------------------------------------- flow
async function load() {
  const period = $("period").value;
  if (!period) { $("status").textContent = "尚无互助期。"; return; }
  $("status").textContent = "加载中…";
  document.body.dataset.loaded = "";
  try {
    const [data, health] = await Promise.all([
      api("/api/overview?period=" + encodeURIComponent(period)), api("/api/health")]);
    render(data);
    renderHealth(health);
    $("status").textContent = `${data.period} · 范围 ${data.branch} · ${new Date().toLocaleString("zh-CN")} 更新`;
    document.body.dataset.loaded = period;
  } catch (err) {
    $("status").textContent = "加载失败：" + err.message;
  }
}

async function start() {
  if (!token()) { showLogin(); return; }
  try {
    const me = await api("/api/me");
    $("who-name").textContent = `${me.username} · ${ROLE_ZH[me.role] || me.role} ${me.org}`;
    const periods = await api("/api/periods");
    const select = $("period");
    select.replaceChildren(...periods.map((p) => new Option(`${p.name} (${p.code})`, p.code)));
    const wanted = new URLSearchParams(location.search).get("period");
    if (wanted && periods.some((p) => p.code === wanted)) select.value = wanted;
    $("login-box").hidden = true;
    $("who").hidden = false;
    $("board").hidden = false;
    await load();
  } catch (err) {
    showLogin(err.message);
  }
}

function showLogin(message) {
  $("board").hidden = true;
  $("who").hidden = true;
  $("login-box").hidden = false;
  $("login-error").textContent = message || "";
}

function logout() {
  sessionStorage.removeItem(TOKEN_KEY);
  showLogin();
}

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("login-error").textContent = "";
    try {
      const body = await api("/api/login", {method: "POST", body: new URLSearchParams(new FormData(event.target))});
      sessionStorage.setItem(TOKEN_KEY, body.access_token);
      event.target.reset();
      await start();
    } catch (err) {
      $("login-error").textContent = err.message;
    }
  });
  $("logout").addEventListener("click", logout);
  $("period").addEventListener("change", load);
  start();
});
