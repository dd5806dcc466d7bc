// Siaga 112 console: the browser phone of the operator's desk (WebRTC with JsSIP).
// It registers the operator's own SIP account (GET /operator/phone) over the console's SIP
// relay (supervisor/views/phone.py); the ACD rings it like a desk phone. One call at a time.
"use strict";

(function () {
  const messages = JSON.parse(document.getElementById("messages").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  const panel = document.getElementById("phone-panel");
  const audio = document.getElementById("phone-audio");
  const buttons = {
    register: document.getElementById("phone-register"),
    answer: document.getElementById("phone-answer"),
    hangup: document.getElementById("phone-hangup"),
    mute: document.getElementById("phone-mute"),
  };
  let ua = null;
  let call = null; // the JsSIP RTCSession ringing or in progress
  let registered = false;
  let statsTimer = null;
  const title = document.title;

  function t(key) {
    return Object.prototype.hasOwnProperty.call(messages, key) ? messages[key] : key;
  }

  function text(id, value) {
    const node = document.getElementById(id);
    node.textContent = value;
    node.hidden = !value;
  }

  // off | connecting | registered | failed | ringing | in_call
  function show(state) {
    panel.dataset.state = state;
    document.getElementById("phone-status").textContent = t("phone." + state);
    buttons.register.disabled = state === "connecting" || registered || call !== null;
    buttons.answer.disabled = state !== "ringing";
    buttons.hangup.disabled = state !== "ringing" && state !== "in_call";
    buttons.mute.disabled = state !== "in_call";
    document.title = state === "ringing" ? "(" + t("phone.ringing") + ") " + title : title;
    document.body.classList.toggle("phone-ringing", state === "ringing");
  }

  function idle() {
    return registered ? "registered" : "off";
  }

  async function start() {
    if (typeof JsSIP === "undefined") {
      text("phone-error", t("phone.no_library"));
      buttons.register.disabled = true;
      return;
    }
    show("connecting");
    let account;
    try {
      const response = await fetch("/operator/phone", { headers: { "X-CSRF-Token": csrf } });
      if (!response.ok) throw new Error("phone settings: " + response.status);
      account = await response.json();
    } catch (error) {
      text("phone-error", String(error));
      show("failed");
      return;
    }
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new JsSIP.WebSocketInterface(scheme + location.host + account.ws_path);
    ua = new JsSIP.UA({
      sockets: [socket],
      uri: account.uri,
      authorization_user: account.user,
      password: account.password,
      display_name: account.display_name,
      register: true,
      register_expires: 120,
      session_timers: false,
      user_agent: "Siaga112 browser phone",
    });
    ua.on("registered", () => {
      registered = true;
      text("phone-error", "");
      if (call === null) show("registered");
    });
    ua.on("unregistered", () => {
      registered = false;
      if (call === null) show("off");
    });
    ua.on("registrationFailed", (event) => {
      registered = false;
      text("phone-error", t("phone.failed") + ": " + (event.cause || ""));
      if (call === null) show("failed");
    });
    ua.on("disconnected", () => {
      registered = false;
      if (call === null) show("connecting");
    });
    ua.on("newRTCSession", (event) => {
      if (event.originator !== "remote") return;
      if (call !== null) {
        event.session.terminate({ status_code: 486 });
        return;
      }
      ringing(event.session, event.request);
    });
    ua.start();
  }

  function ringing(session, request) {
    call = session;
    const name = request.from.display_name || "";
    const number = request.from.uri.user || "";
    text("phone-peer", name.includes(number) ? name : (name + " " + number).trim());
    session.on("peerconnection", (event) => watch(event.peerconnection));
    session.on("accepted", () => show("in_call"));
    session.on("ended", ended);
    session.on("failed", (event) => {
      if (event.cause === JsSIP.C.causes.USER_DENIED_MEDIA_ACCESS) {
        text("phone-error", t("phone.no_microphone"));
      }
      ended();
    });
    show("ringing");
  }

  function watch(connection) {
    connection.addEventListener("track", (event) => {
      audio.srcObject = event.streams[0] || new MediaStream([event.track]);
      audio.play().catch(() => {}); // autoplay is allowed while the microphone is in use
    });
  }

  function ended() {
    call = null;
    audio.srcObject = null;
    clearInterval(statsTimer);
    statsTimer = null;
    buttons.mute.setAttribute("aria-pressed", "false");
    buttons.mute.textContent = t("phone.mute");
    text("phone-peer", "");
    show(idle());
  }

  // What the page hears: bytes and level of the incoming audio (getStats), shown and kept on
  // the element for whoever checks the phone works (tests/supervisor/test_console_phone.py).
  async function incoming() {
    if (call === null || !call.connection) return null;
    const stats = await call.connection.getStats();
    let found = null;
    stats.forEach((report) => {
      if (report.type === "inbound-rtp" && report.kind === "audio") found = report;
    });
    const codec = found && found.codecId ? stats.get(found.codecId) : null;
    return found && { ...found, mimeType: codec ? codec.mimeType : "" };
  }

  async function showIncoming() {
    const report = await incoming();
    if (report === null) return;
    const node = document.getElementById("phone-audio-in");
    node.dataset.bytes = String(report.bytesReceived || 0);
    node.dataset.level = String(report.audioLevel || 0);
    node.dataset.codec = report.mimeType;
    node.textContent = report.audioLevel > 0 ? t("phone.receiving") : t("phone.silent");
  }

  buttons.register.addEventListener("click", () => {
    if (ua !== null) ua.stop();
    ua = null;
    registered = false;
    start();
  });

  buttons.answer.addEventListener("click", () => {
    if (call === null) return;
    text("phone-error", "");
    call.answer({
      mediaConstraints: { audio: true, video: false },
      pcConfig: { iceServers: [] }, // the centre's LAN: Asterisk's own address is reachable
    });
    statsTimer = setInterval(showIncoming, 1000);
  });

  buttons.hangup.addEventListener("click", () => {
    if (call !== null) call.terminate();
  });

  buttons.mute.addEventListener("click", () => {
    if (call === null) return;
    const muted = call.isMuted().audio;
    if (muted) call.unmute({ audio: true });
    else call.mute({ audio: true });
    buttons.mute.setAttribute("aria-pressed", String(!muted));
    buttons.mute.textContent = muted ? t("phone.mute") : t("phone.unmute");
    document.getElementById("phone-status").textContent = muted ? t("phone.in_call") : t("phone.muted");
  });

  window.addEventListener("pagehide", () => {
    if (ua !== null) ua.stop(); // unregister: the ACD stops offering calls to a closed page
  });

  show("off");
  start();
})();
