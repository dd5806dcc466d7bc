// Siaga 112 console: renders the live board and the operator desk from server-sent events.
// Every value from the server is set as text (textContent, attributes), never as HTML.
"use strict";

(function () {
  const messages = JSON.parse(document.getElementById("messages").textContent);
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";

  function t(key) {
    return Object.prototype.hasOwnProperty.call(messages, key) ? messages[key] : key;
  }

  function label(prefix, value) {
    const key = prefix + value;
    return Object.prototype.hasOwnProperty.call(messages, key) ? messages[key] : String(value);
  }

  function byId(id) {
    return document.getElementById(id);
  }

  function setText(id, text) {
    const node = byId(id);
    if (node && node.textContent !== text) node.textContent = text;
  }

  function clock(seconds) {
    if (seconds === null || seconds === undefined) return "-";
    const total = Math.max(0, Math.floor(seconds));
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = total % 60;
    const mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(s).padStart(2, "0");
  }

  function flagsText(flags) {
    return (flags || []).map((f) => label("flag.", f)).join(", ");
  }

  // A small form posting to `action` with the CSRF token and one button.
  function actionForm(action, buttonText, fields) {
    const form = document.createElement("form");
    form.method = "post";
    form.action = action;
    form.className = "inline";
    const token = document.createElement("input");
    token.type = "hidden";
    token.name = "csrf";
    token.value = csrf;
    form.appendChild(token);
    for (const [name, value] of Object.entries(fields || {})) {
      const input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = value;
      form.appendChild(input);
    }
    const button = document.createElement("button");
    button.textContent = buttonText;
    form.appendChild(button);
    return form;
  }

  // Updates a table body in place, one row per key: cells change as text, and a row's action
  // cell is rebuilt only when its signature changes (a click is never lost to a re-render).
  function syncRows(tbody, items, key, cells, actions) {
    const head = tbody.parentNode.tHead;
    const headings = head ? Array.from(head.rows[0].cells, (c) => c.textContent) : [];
    const existing = new Map();
    for (const row of Array.from(tbody.rows)) existing.set(row.dataset.key, row);
    const rows = items.map((item) => {
      const k = key(item);
      const texts = cells(item);
      let row = existing.get(k);
      if (!row) {
        row = document.createElement("tr");
        row.dataset.key = k;
        for (let i = 0; i < texts.length + (actions ? 1 : 0); i++) {
          const cell = document.createElement("td");
          // The column's heading, shown beside the value where a phone stacks the cells.
          if (headings[i]) cell.dataset.label = headings[i];
          row.appendChild(cell);
        }
      }
      texts.forEach((text, i) => {
        if (row.cells[i].textContent !== text) row.cells[i].textContent = text;
      });
      if (actions) {
        const [signature, build] = actions(item);
        const cell = row.cells[texts.length];
        if (cell.dataset.signature !== signature) {
          cell.dataset.signature = signature;
          cell.replaceChildren(...build());
        }
      }
      return row;
    });
    const sameOrder =
      rows.length === tbody.rows.length && rows.every((row, i) => tbody.rows[i] === row);
    if (!sameOrder) tbody.replaceChildren(...rows);
  }

  function live(url, render) {
    const status = byId("board-status");
    const source = new EventSource(url);
    source.onmessage = (event) => {
      if (status) status.hidden = true;
      render(JSON.parse(event.data));
    };
    source.addEventListener("signed_out", () => {
      source.close();
      window.location.assign("/login");
    });
    source.onerror = () => {
      if (status) status.hidden = false;
    };
  }

  // -- alarms: colour and text, the page title, a beep; the desk's ringing call

  const baseTitle = document.title;
  const alarmsSeen = new Set();
  let audio = null;
  let lastBeep = 0;
  const REPEAT_BEEP_MS = 15000; // an unacknowledged alarm beeps again until someone acts

  // Browsers start sound only after a click or a key on the page: the first one unlocks it.
  function unlockAudio() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === "suspended") audio.resume().catch(() => {});
    } catch (e) {
      audio = null;
    }
  }
  document.addEventListener("click", unlockAudio, { once: true, capture: true });
  document.addEventListener("keydown", unlockAudio, { once: true, capture: true });

  // A short tone sequence made by WebAudio: [frequency Hz, start s, length s] each.
  function beep(tones) {
    lastBeep = Date.now();
    document.body.dataset.beeps = String(Number(document.body.dataset.beeps || 0) + 1);
    try {
      unlockAudio();
      if (!audio) return;
      const start = audio.currentTime;
      for (const [frequency, at, length] of tones) {
        const osc = audio.createOscillator();
        const gain = audio.createGain();
        osc.frequency.value = frequency;
        gain.gain.setValueAtTime(0.25, start + at);
        gain.gain.exponentialRampToValueAtTime(0.001, start + at + length);
        osc.connect(gain);
        gain.connect(audio.destination);
        osc.start(start + at);
        osc.stop(start + at + length);
      }
    } catch (e) {
      // No sound device: the colour and the title still say it.
    }
  }

  const ALARM_TONES = [[880, 0, 0.18], [660, 0.22, 0.18], [880, 0.44, 0.18]];
  const RING_TONES = [[520, 0, 0.25], [780, 0.3, 0.35]];

  function renderAlerts(alerts, sound, repeat) {
    const list = byId("alert-list");
    if (!list) return;
    const panel = byId("alerts");
    const canAck = Boolean(panel) && panel.dataset.canAck === "yes";
    const items = alerts.map((a) => {
      let item = list.querySelector('li[data-key="' + CSS.escape(a.key) + '"]');
      if (!item) {
        item = document.createElement("li");
        item.dataset.key = a.key;
        const text = document.createElement("span");
        text.className = "alert-text";
        const meta = document.createElement("span");
        meta.className = "alert-meta";
        const action = document.createElement("span");
        action.className = "alert-action";
        item.append(text, meta, action);
      }
      item.className = "alert " + a.severity + (a.acknowledged_by ? " acknowledged" : "");
      const [text, meta, action] = item.children;
      const textValue = t("alert.severity." + a.severity) + ": " + a.text;
      if (text.textContent !== textValue) text.textContent = textValue;
      const metaValue =
        t("alert.for") + " " + clock(a.seconds) +
        (a.acknowledged_by ? " · " + t("alert.acknowledged_by") + " " + a.acknowledged_by : "");
      if (meta.textContent !== metaValue) meta.textContent = metaValue;
      const showAck = canAck && !a.acknowledged_by;
      if ((action.childElementCount > 0) !== showAck) {
        action.replaceChildren(
          ...(showAck ? [actionForm("/board/alerts/ack", t("alert.acknowledge"), { key: a.key })] : []),
        );
      }
      return item;
    });
    const same = items.length === list.children.length && items.every((li, i) => list.children[i] === li);
    if (!same) list.replaceChildren(...items);
    const none = byId("alert-none");
    if (none) none.hidden = alerts.length > 0;

    const open = alerts.filter((a) => !a.acknowledged_by);
    const critical = open.some((a) => a.severity === "critical");
    document.body.classList.toggle("alarm", critical);
    if (panel) panel.classList.toggle("active", open.length > 0);
    const title = alerts.length ? "(" + alerts.length + ") \u26a0 " + t("alert.title") + " \u00b7 " + baseTitle : baseTitle;
    if (document.title !== title) document.title = title;

    const fresh = open.some((a) => !alarmsSeen.has(a.key));
    for (const key of Array.from(alarmsSeen)) {
      if (!alerts.some((a) => a.key === key)) alarmsSeen.delete(key);
    }
    for (const a of alerts) alarmsSeen.add(a.key);
    if (!sound) return;
    if (fresh || (repeat && open.length && Date.now() - lastBeep >= REPEAT_BEEP_MS)) beep(ALARM_TONES);
  }

  let ringingCall = null;

  // A call offered to this operator: a ring tone, and a notification when the tab is hidden.
  function announceOffer(call, sound) {
    const ringing = call && call.live && call.state === "offered" ? call.call_id : null;
    if (ringing === ringingCall) return;
    ringingCall = ringing;
    if (!ringing) return;
    if (sound) beep(RING_TONES);
    if (document.hidden && "Notification" in window && Notification.permission === "granted") {
      const body = [call.category, call.number].filter(Boolean).join(" \u00b7 ");
      new Notification(t("alert.offered"), { body: body, tag: "siaga-offer" });
    }
  }

  function setupNotifications() {
    const button = byId("notify-enable");
    if (!button || !("Notification" in window)) return;
    button.hidden = Notification.permission !== "default";
    button.addEventListener("click", () => {
      Notification.requestPermission().then(() => {
        button.hidden = Notification.permission !== "default";
      });
    });
  }

  // -- the live board

  function renderBoard(data) {
    const oldest = data.oldest;
    setText("oldest-age", oldest ? clock(oldest.age) : t("board.nobody_waiting"));
    setText("oldest-category", oldest ? oldest.category : "");
    byId("oldest-age").classList.toggle("warn", Boolean(oldest) && oldest.age > data.goal.seconds);
    setText("service-goal", data.goal.text);
    byId("service-goal").classList.toggle("warn", data.goal.met === false);
    for (const node of document.querySelectorAll("#today [data-count]")) {
      const value = String(data.today[node.dataset.count]);
      if (node.textContent !== value) node.textContent = value;
    }
    syncRows(
      byId("categories").tBodies[0],
      data.categories,
      (c) => c.code,
      (c) => [
        c.label,
        String(c.waiting.length),
        c.waiting.map((w) => clock(w.age) + (w.flags.length ? " (" + flagsText(w.flags) + ")" : "")).join(", "),
        clock(c.longest),
        (c.sl === null ? "-" : Math.round(100 * c.sl) + "%") +
          " (" + t("board.target") + " " + c.target + " s)",
      ],
    );
    for (const c of data.categories) {
      const row = byId("categories").querySelector('tr[data-key="' + CSS.escape(c.code) + '"]');
      if (row) row.className = "wait-" + c.status;
    }
    renderAlerts(data.alerts, data.sound, true);
    const hasPhone = byId("live-calls").dataset.hasPhone === "yes";
    syncRows(
      byId("live-calls").tBodies[0],
      data.calls,
      (c) => c.call_id,
      (c) => [
        c.number || "-",
        c.name || "",
        c.category || "-",
        label("call.", c.state),
        c.operator || "",
        clock(c.age),
        flagsText(c.flags),
      ],
      (c) => [
        c.state + (hasPhone ? "1" : "0"),
        () =>
          c.state === "connected" && hasPhone
            ? ["listen", "whisper", "barge"].map((mode) =>
                actionForm(
                  "/board/calls/" + encodeURIComponent(c.call_id) + "/listen",
                  t("board." + mode),
                  { mode: mode },
                ),
              )
            : [],
      ],
    );
    syncRows(
      byId("operators").tBodies[0],
      data.operators,
      (o) => o.id,
      (o) => [
        o.name,
        label("state.", o.state) + (o.registered === false ? " · " + t("desk.unregistered") : ""),
        clock(o.seconds),
        o.state === "paused" ? label("pause.", o.reason) : "",
      ],
      (o) => [
        o.state,
        () => {
          const base = "/board/operators/" + encodeURIComponent(o.id) + "/";
          const forms = [];
          if (byId("operators").dataset.canAct !== "yes") return forms; // a role that may not act
          if (o.state === "paused" || o.state === "wrap_up") forms.push(actionForm(base + "ready", t("board.ready")));
          if (o.state !== "paused" && o.state !== "logged_out") forms.push(actionForm(base + "pause", t("board.pause")));
          if (o.state !== "logged_out") forms.push(actionForm(base + "logout", t("board.logout")));
          return forms;
        },
      ],
    );
  }

  // -- the operator desk

  let currentCall = null;
  let historyKey = "";
  let categoryShown = null;

  // The category selector follows the records, except while the operator is choosing.
  function renderCategory(call) {
    const form = byId("category-form");
    const select = byId("category-select");
    form.classList.toggle("urgent", !!call.unclassified);
    byId("category-unclassified").hidden = !call.unclassified;
    if (call.category_code !== categoryShown && document.activeElement !== select) {
      select.value = call.category_code || "";
      categoryShown = call.category_code;
    }
  }

  function pendingText(pending) {
    if (!pending) return "";
    if (pending === "logout") return t("desk.pending") + ": " + t("desk.logout");
    if (pending.startsWith("pause:")) {
      return t("desk.pending") + ": " + t("desk.pause") + " (" + label("pause.", pending.slice(6)) + ")";
    }
    return "";
  }

  function renderDesk(data) {
    const op = data.operator;
    setText("op-state", label("state.", op ? op.state : "logged_out"));
    setText("op-seconds", op ? clock(op.seconds) : "");
    setText("op-reason", op && op.state === "paused" ? "(" + label("pause.", op.reason) + ")" : "");
    setText("op-pending", op ? pendingText(op.pending) : "");
    byId("op-unregistered").hidden = !op || op.registered;
    renderOwed(data);

    renderAlerts(data.alerts, data.sound, false);
    const call = data.call;
    announceOffer(call, data.sound);
    byId("pop").hidden = !call;
    byId("no-call").hidden = !!call;
    if (!call) {
      currentCall = null;
      return;
    }
    if (call.call_id !== currentCall) {
      byId("disposition").reset();
      for (const input of document.querySelectorAll(".js-call-id")) input.value = call.call_id;
      byId("category-form").action = "/calls/" + encodeURIComponent(call.call_id) + "/category";
      currentCall = call.call_id;
      historyKey = "";
      categoryShown = null;
    }
    renderCategory(call);
    setText("pop-state", label("call.", call.state));
    byId("pop-ended").hidden = call.live;
    setText("pop-category", call.category);
    setText("pop-number", call.number || "-");
    setText("pop-name", call.name || "");
    setText("pop-flags", flagsText(call.flags) || "-");
    setText("pop-repeat", String(call.repeat_count));
    byId("pop-blocked").hidden = !call.blocked;
    const agencies = byId("agencies");
    if (agencies) agencies.hidden = !(call.live && call.state === "connected");
    renderCallControls(call, data.colleagues || []);

    const key = JSON.stringify(call.history);
    if (key !== historyKey) {
      historyKey = key;
      const rows = call.history.map((h) => {
        const row = document.createElement("tr");
        for (const text of [
          h.at,
          h.category,
          label("outcome.", h.outcome),
          h.verdict ? label("verdict.", h.verdict) : "",
          h.notes || "",
        ]) {
          const cell = document.createElement("td");
          cell.textContent = text;
          row.appendChild(cell);
        }
        return row;
      });
      if (!rows.length) {
        const row = document.createElement("tr");
        const cell = document.createElement("td");
        cell.colSpan = 5;
        cell.textContent = t("pop.no_history");
        row.appendChild(cell);
        rows.push(row);
      }
      byId("pop-history").tBodies[0].replaceChildren(...rows);
    }
  }

  // -- the disposition backlog: the calls still owing one, oldest first; one picked here is
  // the one the desk's form is for (?call=), else the last one.
  function renderOwed(data) {
    const owed = data.owed || [];
    setText("op-owed", owed.length ? t("desk.owed").replace("{count}", String(owed.length)) : "");
    byId("op-held").hidden = !data.held;
    byId("owed-panel").hidden = !owed.length;
    syncRows(
      byId("owed").tBodies[0],
      owed,
      (o) => o.call_id,
      (o) => [o.ended, o.number, o.category],
      (o) => [
        o.chosen ? "chosen" : "pick",
        () => {
          if (o.chosen) {
            const mark = document.createElement("span");
            mark.textContent = t("owed.in_form");
            return [mark];
          }
          const link = document.createElement("a");
          link.href = "/operator?call=" + encodeURIComponent(o.call_id);
          link.textContent = t("owed.fill");
          return [link];
        },
      ],
    );
  }

  // -- call controls on the desk: hand-offs, hang up, conference a colleague, leave

  function renderCallControls(call, colleagues) {
    const panel = byId("call-controls");
    if (!panel) return;
    panel.hidden = !(call.live && call.state === "connected");
    const handOffs = call.hand_offs || [];
    const items = handOffs.map((h) => {
      const item = document.createElement("li");
      item.className = "handoff-" + h.status;
      item.textContent = h.name + ": " + h.text;
      return item;
    });
    const list = byId("hand-offs");
    const key = JSON.stringify(handOffs);
    if (list.dataset.key !== key) {
      list.dataset.key = key;
      list.replaceChildren(...items);
    }
    byId("btn-leave").disabled = !handOffs.some((h) => h.kind === "colleague" && h.status === "answered");
    // A colleague conferenced in beside the call's operator: they see who is on it and may
    // leave (their own leg); hang up, hold, conference and agencies stay the operator's.
    const joined = !!call.with_operator;
    const withOperator = byId("with-operator");
    withOperator.hidden = !joined;
    withOperator.textContent = joined ? t("ctl.with_operator").replace("{name}", call.with_operator) : "";
    for (const id of ["btn-hangup", "btn-hold", "conference-form"]) byId(id).closest("form").hidden = joined;
    const agencies = byId("agencies");
    if (agencies && joined) agencies.hidden = true;
    if (joined) byId("btn-leave").disabled = false;
    byId("btn-leave").textContent = t(joined ? "ctl.leave_own" : "ctl.leave");
    byId("btn-hold").hidden = !!call.held;
    byId("btn-resume").hidden = !call.held;
    byId("on-hold").hidden = !call.held;
    const group = byId("colleague-operators");
    const select = byId("colleague-select");
    const ready = JSON.stringify(colleagues);
    if (group.dataset.key !== ready && document.activeElement !== select) {
      group.dataset.key = ready;
      const chosen = select.value;
      group.replaceChildren(
        ...colleagues.map((c) => {
          const option = document.createElement("option");
          option.value = "operator:" + c.id;
          option.textContent = c.name;
          return option;
        }),
      );
      if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
    }
  }

  // Keys on the desk; never while typing (a text field, a list, anything editable) nor with
  // Ctrl/Alt/Meta (the browser's own). Hang up and leave only move the focus to their button:
  // Enter confirms, so a stray key never ends a 112 call.
  function deskShortcuts(event) {
    if (event.ctrlKey || event.altKey || event.metaKey || event.repeat) return;
    const target = event.target;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) {
      if (!(target.type === "radio")) return;
    }
    const click = (id) => {
      const node = byId(id);
      if (node && !node.disabled && node.offsetParent !== null) node.click();
      return !!node;
    };
    const focus = (id) => {
      const node = byId(id);
      if (node && !node.disabled && node.offsetParent !== null) node.focus();
      return !!node;
    };
    const clickShown = (id) => {
      const node = byId(id);
      if (!node || node.disabled || node.offsetParent === null) return false;
      node.click();
      return true;
    };
    let done = false;
    const digit = /^Digit([1-9])$/.exec(event.code);
    if (digit && event.shiftKey) {
      const button = document.querySelector('#agencies button[data-agency-digit="' + digit[1] + '"]');
      if (button && button.offsetParent !== null) {
        button.click();
        done = true;
      }
    } else if (digit) {
      const radio = document.querySelector('#disposition input[data-key="' + digit[1] + '"]');
      if (radio && radio.offsetParent !== null) {
        radio.checked = true;
        radio.focus();
        done = true;
      }
    } else if (!event.shiftKey) {
      const actions = {
        r: () => click("btn-ready"),
        p: () => click("btn-pause"),
        s: () => click("disp-save"),
        h: () => focus("btn-hangup"),
        k: () => focus("colleague-select"),
        l: () => focus("btn-leave"),
        // hold is no danger to the call: one key takes the caller off hold again (controls2)
        t: () => clickShown("btn-hold") || clickShown("btn-resume"),
      };
      const action = actions[event.key.toLowerCase()];
      if (action) done = action();
    }
    if (done) event.preventDefault();
  }

  // -- the wallboard: large type, no controls

  const OPERATOR_STATES = ["available", "offered", "on_call", "wrap_up", "paused", "logged_out"];

  function renderWall(data) {
    for (const c of data.categories) {
      const row = byId("wall-categories").querySelector('tr[data-key="' + CSS.escape(c.code) + '"]');
      if (!row) continue;
      row.className = "wait-" + c.status;
      row.cells[1].textContent = String(c.waiting.length);
      row.cells[2].textContent = clock(c.longest);
    }
    const goal = data.goal;
    setText("wall-sl", goal.ratio === null ? "-" : Math.round(100 * goal.ratio) + " %");
    setText("wall-sl-goal", t("wall.goal").replace("{target}", Math.round(100 * goal.target) + " %"));
    const gauge = byId("gauge");
    gauge.classList.toggle("met", goal.met === true);
    gauge.classList.toggle("unmet", goal.met === false);
    // CSSOM, not a style attribute: the policy allows no inline style.
    byId("gauge-fill").style.width = (goal.ratio === null ? 0 : 100 * goal.ratio) + "%";
    byId("gauge-goal").style.left = 100 * goal.target + "%";
    const counts = Object.fromEntries(OPERATOR_STATES.map((s) => [s, 0]));
    for (const o of data.operators) counts[o.state] = (counts[o.state] || 0) + 1;
    for (const item of byId("wall-operators").children) {
      item.firstElementChild.textContent = String(counts[item.dataset.state] || 0);
    }
    renderAlerts(data.alerts, data.sound, true);
  }

  function tickWallClock() {
    setText("wall-clock", new Date().toLocaleTimeString(document.documentElement.lang, { hour12: false }));
  }

  const page = document.body.dataset.page;
  if (page === "board") live("/board/events", renderBoard);
  if (page === "desk") {
    setupNotifications();
    const chosen = new URLSearchParams(window.location.search).get("call");
    live("/operator/events" + (chosen ? "?call=" + encodeURIComponent(chosen) : ""), renderDesk);
    document.addEventListener("keydown", deskShortcuts);
  }
  if (page === "wallboard") {
    tickWallClock();
    setInterval(tickWallClock, 1000);
    live("/board/events", renderWall);
  }
  // reports: the shift summary's print button (the policy allows no inline handler)
  for (const button of document.querySelectorAll("[data-print]")) {
    button.addEventListener("click", () => window.print());
  }
})();
