// Latchkey passkeys: the small script the pages need for WebAuthn, and
// nothing else. Every page works without it; it only shows the forms
// marked data-passkey (hidden in the HTML) and drives them:
//
//   1. POST the form (its _csrf field and all) to its data-options URL and
//      get the ceremony's options as JSON (or {"error": "…"});
//   2. navigator.credentials.create() or get() with them;
//   3. put the answer, as JSON, in the form's "credential" field and submit
//      the form to its action: the server answers as for any form (a
//      redirect, or a readable page with a 4xx).
//
// On the login page it also starts a conditional get, so the browser can
// offer passkeys in the email field's autofill.
(function () {
  'use strict';

  if (!window.PublicKeyCredential || !navigator.credentials || !window.fetch || !window.FormData) {
    return; // no WebAuthn here: the forms stay hidden
  }

  function fromB64url(s) {
    s = s.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) s += '=';
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function toB64url(buf) {
    var bytes = new Uint8Array(buf);
    var bin = '';
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function descriptors(list) {
    return (list || []).map(function (c) {
      return Object.assign({}, c, { id: fromB64url(c.id) });
    });
  }

  function creationOptions(o) {
    var pk = Object.assign({}, o.publicKey);
    pk.challenge = fromB64url(pk.challenge);
    pk.user = Object.assign({}, pk.user, { id: fromB64url(pk.user.id) });
    pk.excludeCredentials = descriptors(pk.excludeCredentials);
    return pk;
  }

  function requestOptions(o) {
    var pk = Object.assign({}, o.publicKey);
    pk.challenge = fromB64url(pk.challenge);
    pk.allowCredentials = descriptors(pk.allowCredentials);
    return pk;
  }

  // credentialJSON is PublicKeyCredential.toJSON(), written out for the
  // browsers that lack it.
  function credentialJSON(cred) {
    var r = cred.response;
    var response = { clientDataJSON: toB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toB64url(r.attestationObject);
      if (r.getTransports) response.transports = r.getTransports();
    } else {
      response.authenticatorData = toB64url(r.authenticatorData);
      response.signature = toB64url(r.signature);
      if (r.userHandle) response.userHandle = toB64url(r.userHandle);
    }
    var ext = cred.getClientExtensionResults ? cred.getClientExtensionResults() : {};
    return JSON.stringify({
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      response: response,
      clientExtensionResults: { credProps: ext.credProps }
    });
  }

  function showError(form, msg) {
    var el = form.querySelector('[data-passkey-error]');
    if (el) {
      el.textContent = msg;
      el.hidden = false;
    }
  }

  function clearError(form) {
    var el = form.querySelector('[data-passkey-error]');
    if (el) el.hidden = true;
  }

  // options asks the server for a ceremony's options.
  function options(form, extra) {
    var body = new FormData(form);
    body.delete('credential');
    Object.keys(extra || {}).forEach(function (k) { body.set(k, extra[k]); });
    return fetch(form.getAttribute('data-options'), {
      method: 'POST',
      body: body,
      credentials: 'same-origin',
      headers: { Accept: 'application/json' }
    }).then(function (res) {
      return res.json().catch(function () { return null; }).then(function (data) {
        if (!res.ok || !data || data.error) {
          throw new Error((data && data.error) || 'That did not work. Reload the page and try again.');
        }
        return data;
      });
    });
  }

  // finish posts the browser's answer with the form.
  function finish(form, cred) {
    form.querySelectorAll('input[type=password]').forEach(function (el) { el.value = ''; });
    form.querySelector('input[name=credential]').value = credentialJSON(cred);
    form.submit();
  }

  function failed(form, button, err) {
    if (button) button.disabled = false;
    if (err && (err.name === 'NotAllowedError' || err.name === 'AbortError')) {
      showError(form, 'No passkey was used. Try again when you are ready.');
    } else if (err && err.name === 'InvalidStateError') {
      showError(form, 'This device has a passkey for your account already.');
    } else {
      showError(form, (err && err.message) || 'That did not work. Try again.');
    }
  }

  var conditional = null; // the login page's pending autofill request

  function run(form, kind) {
    var button = form.querySelector('button[type=submit]');
    clearError(form);
    if (button) button.disabled = true;
    if (conditional) {
      conditional.abort();
      conditional = null;
    }
    options(form).then(function (o) {
      if (kind === 'register') {
        return navigator.credentials.create({ publicKey: creationOptions(o) });
      }
      return navigator.credentials.get({ publicKey: requestOptions(o) });
    }).then(function (cred) {
      if (!cred) throw new Error('No passkey was used.');
      finish(form, cred);
    }).catch(function (err) { failed(form, button, err); });
  }

  function autofill(form) {
    if (!PublicKeyCredential.isConditionalMediationAvailable) return;
    PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
      if (!ok || !document.querySelector('input[autocomplete~=webauthn]')) return;
      var ctl = new AbortController();
      conditional = ctl;
      return options(form, { conditional: '1' }).then(function (o) {
        return navigator.credentials.get({ publicKey: requestOptions(o), mediation: 'conditional', signal: ctl.signal });
      }).then(function (cred) {
        if (cred && conditional === ctl) finish(form, cred);
      });
    }).catch(function () { /* autofill is a convenience: the button still works */ });
  }

  function start() {
    document.querySelectorAll('form[data-passkey]').forEach(function (form) {
      var kind = form.getAttribute('data-passkey');
      form.hidden = false;
      form.addEventListener('submit', function (ev) {
        ev.preventDefault();
        run(form, kind);
      });
      if (kind === 'login') autofill(form);
    });
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
