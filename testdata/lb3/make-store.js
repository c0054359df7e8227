#!/usr/bin/env node
// make-store.js: boot this stock LoopBack 3 app on one data source, let
// LoopBack's own models write a small store, and print one JSON object on
// stdout describing what is in it (see README.md).
//
//   node make-store.js memory   FILE          memory connector persisted to FILE
//   node make-store.js mysql    DBNAME|URL    mysql://root@127.0.0.1:3306/DBNAME
//   node make-store.js postgres DBNAME|URL    postgres://postgres@127.0.0.1:5432/DBNAME
//
// Everything goes through model methods (user.create, user.login, logout,
// resetPassword, verify, UserIdentity.login, UserCredential.link, Role and
// RoleMapping), after automigrate, so the layout and the values are what a
// real app leaves behind. The passwords in the description are test-only.
'use strict';

// Nothing but the description may reach stdout: send stray console.log
// output (deprecation notices, connector chatter) to stderr.
const out = process.stdout;
console.log = console.error;
console.info = console.error;

const path = require('path');
const loopback = require('loopback');
const boot = require('loopback-boot');

const DEFAULT_MYSQL = 'mysql://root@127.0.0.1:3306/';
const DEFAULT_POSTGRES = 'postgres://postgres@127.0.0.1:5432/';
const HOUR = 3600 * 1000;

function usage(msg) {
  if (msg) console.error('make-store: ' + msg);
  console.error('usage: node make-store.js memory FILE | mysql DBNAME|URL | postgres DBNAME|URL');
  process.exit(2);
}

// dataSourceFor returns the "db" data source settings for kind and target.
function dataSourceFor(kind, target) {
  switch (kind) {
    case 'memory':
      return {name: 'db', connector: 'memory', file: path.resolve(target)};
    case 'mysql':
      return {
        name: 'db', connector: 'mysql',
        url: target.includes('://') ? target : DEFAULT_MYSQL + target,
      };
    case 'postgres':
      return {
        name: 'db', connector: 'postgresql',
        url: target.includes('://') ? target : DEFAULT_POSTGRES + target,
      };
    default:
      return usage('unknown kind ' + JSON.stringify(kind));
  }
}

// createDatabase creates the SQL database named in settings.url if it is
// missing, with the drivers the connectors bring. The Go helper creates it
// first (it owns the name and drops it); this is for running by hand.
async function createDatabase(kind, settings) {
  const u = new URL(settings.url);
  const db = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (!/^[A-Za-z0-9_]+$/.test(db)) usage('database name must match [A-Za-z0-9_]+: ' + db);
  if (kind === 'mysql') {
    const mysql = require('mysql');
    u.pathname = '/';
    const conn = mysql.createConnection(u.toString());
    await new Promise((resolve, reject) =>
      conn.query('CREATE DATABASE IF NOT EXISTS `' + db + '`', (err) => err ? reject(err) : resolve()));
    await new Promise((resolve) => conn.end(() => resolve()));
  } else if (kind === 'postgres') {
    const {Client} = require('pg');
    u.pathname = '/postgres';
    const c = new Client({connectionString: u.toString()});
    await c.connect();
    try {
      const r = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [db]);
      if (r.rowCount === 0) await c.query('CREATE DATABASE "' + db + '"');
    } finally {
      await c.end();
    }
  }
}

function bootApp(dsSettings) {
  const app = loopback();
  return new Promise((resolve, reject) => {
    boot(app, {
      appRootDir: path.join(__dirname, 'server'),
      dataSources: {db: dsSettings},
    }, (err) => err ? reject(err) : resolve(app));
  });
}

// isUniquenessError tells LoopBack's "Email already exists" (a 422
// ValidationError from validatesUniquenessOf) from other failures.
function isUniquenessError(err) {
  const codes = err && err.details && err.details.codes;
  return !!(codes && codes.email && codes.email.includes('uniqueness'));
}

// lbVerdict asks LoopBack itself whether token is valid now, through
// AccessToken.prototype.validate on a copy whose destroy() is a no-op
// (validate destroys the row of a token it finds invalid).
function lbVerdict(AccessToken, token) {
  const probe = new AccessToken(token.toObject());
  probe.destroy = (cb) => process.nextTick(cb);
  return new Promise((resolve) =>
    probe.validate((err, ok) => resolve(err ? 'error: ' + err.message : (ok ? 'valid' : 'invalid'))));
}

const mailer = {send: (opts, cb) => process.nextTick(cb, null, {to: opts.to})};

async function make(app) {
  const ds = app.dataSources.db;
  const User = app.models.user;
  const AccessToken = app.models.AccessToken;
  const UserIdentity = app.models.UserIdentity;
  const UserCredential = app.models.UserCredential;
  const Role = app.models.Role;
  const RoleMapping = app.models.RoleMapping;

  await ds.automigrate();

  const users = {}; // key -> {instance, password, note}
  const tokens = []; // {key, user, state, note, id, ...}
  const notes = [];

  async function addUser(key, data, password) {
    const u = await User.create(Object.assign({password}, data));
    users[key] = {instance: u, password};
    return u;
  }
  function addToken(key, userKey, state, note, token) {
    tokens.push({key, user: userKey, state, note, id: token.id});
    return token;
  }

  // 1. Users with extra fields; a realm; verified, unverified and unset.
  const alice = await addUser('alice', {
    email: 'alice@example.com', username: 'alice', emailVerified: true,
    fullName: 'Alice Liddell', age: 31, newsletter: true,
    memberSince: new Date('2019-03-14T15:09:26.535Z'),
    tags: ['beta', 'admin'], preferences: {theme: 'dark', lang: 'en-GB'},
  }, 'alice-secret-1');
  const bob = await addUser('bob', {
    email: 'bob@acme.test', username: 'bob', realm: 'acme', emailVerified: false,
    fullName: 'Bob Builder', age: 45, newsletter: false,
  }, 'bob-secret-2');
  await addUser('carol', {email: 'carol@example.com'}, 'carol-secret-3');

  // 2. A pending email verification: LoopBack's verify() generates the
  //    token (128 hex digits) and saves it on the user; the mail is dropped.
  await bob.verify({
    type: 'email', from: 'noreply@example.com', mailer,
    verifyHref: 'http://127.0.0.1:3000/api/users/confirm?uid=' + bob.id,
  });

  // 3. Tokens. Live: User.login (default ttl, two weeks).
  const live = await User.login({email: 'alice@example.com', password: 'alice-secret-1'});
  addToken('alice-live', 'alice', 'live', 'User.login, default ttl', live);
  const liveShort = await User.login({email: 'alice@example.com', password: 'alice-secret-1', ttl: 3600});
  addToken('alice-live-1h', 'alice', 'live', 'User.login with ttl 3600', liveShort);
  const bobLive = await User.login({email: 'bob@acme.test', password: 'bob-secret-2', realm: 'acme'});
  addToken('bob-live', 'bob', 'live', 'User.login with realm', bobLive);

  //    Expired: a login whose created date is then set two hours back
  //    through the model, and a token created with a past date.
  const old = await User.login({email: 'alice@example.com', password: 'alice-secret-1', ttl: 3600});
  await old.updateAttributes({created: new Date(Date.now() - 2 * HOUR)});
  addToken('alice-expired', 'alice', 'expired', 'login ttl 3600, created moved 2h back', old);
  const old2 = await alice.createAccessToken({ttl: 60, created: new Date(Date.now() - 24 * HOUR)}, {});
  addToken('alice-expired-ttl60', 'alice', 'expired', 'createAccessToken ttl 60, created 24h ago', old2);

  //    Logged out: User.logout deletes the row, so it is not in the store.
  const gone = await User.login({email: 'alice@example.com', password: 'alice-secret-1'});
  addToken('alice-logged-out', 'alice', 'logged-out', 'User.login then User.logout (row deleted)', gone);
  const goneSnapshot = gone.toObject();
  await User.logout(gone.id);

  //    Reset-scoped: resetPassword emits the token it made.
  const reset = await new Promise((resolve, reject) => {
    User.once('resetPasswordRequest', (info) => resolve(info.accessToken));
    User.resetPassword({email: 'carol@example.com'}).catch(reject);
  });
  addToken('carol-reset', 'carol', 'live', 'User.resetPassword (restrictResetPasswordTokenScope)', reset);

  //    Eternal: ttl -1, live because the app sets allowEternalTokens.
  const eternal = await alice.createAccessToken(-1);
  addToken('alice-eternal', 'alice', 'live', 'createAccessToken(-1) under allowEternalTokens', eternal);

  // 4. A case duplicate. LoopBack's uniqueness check is an exact-match find,
  //    so PostgreSQL and memory accept both; MariaDB's _ci collation makes
  //    the find match and LoopBack refuses the second. There it gets in as
  //    create races and pre-caseSensitiveEmail rows do: created without the
  //    validation ({validate: false}).
  await addUser('ann-upper', {email: 'Ann@x.com', emailVerified: true, fullName: 'Ann (first)'}, 'ann-upper-4');
  try {
    await addUser('ann-lower', {email: 'ann@x.com', emailVerified: false}, 'ann-lower-5');
  } catch (err) {
    if (!isUniquenessError(err)) throw err;
    const u = await User.create({email: 'ann@x.com', emailVerified: false, password: 'ann-lower-5'}, {validate: false});
    users['ann-lower'] = {instance: u, password: 'ann-lower-5'};
    notes.push('ann@x.com was created with {validate: false}: the store compares case-insensitively, ' +
      'so LoopBack refused it as a duplicate of Ann@x.com');
  }
  // Instance methods, not User.login: on a _ci store a login by email
  // could pick either duplicate.
  addToken('ann-upper-live', 'ann-upper', 'live', 'createAccessToken, default ttl',
    await users['ann-upper'].instance.createAccessToken(0));
  addToken('ann-lower-expired', 'ann-lower', 'expired', 'createAccessToken ttl 60, created 1h ago',
    await users['ann-lower'].instance.createAccessToken({ttl: 60, created: new Date(Date.now() - HOUR)}, {}));

  // 5. "Sign in with Google": loopback-component-passport makes the user
  //    (placeholder email), the UserIdentity and a token (autoLogin).
  const profile = {
    provider: 'google', id: '109876543210987654321', displayName: 'Gil Google',
    name: {familyName: 'Google', givenName: 'Gil'},
    emails: [{value: 'gil@gmail.com', verified: true}],
    _json: {sub: '109876543210987654321', email: 'gil@gmail.com', email_verified: true},
  };
  const googleCredentials = {accessToken: 'ya29.provider-access-token', refreshToken: '1//provider-refresh-token'};
  const [gil, identity, gilToken] = await new Promise((resolve, reject) =>
    UserIdentity.login('google-login', 'oAuth 2.0', profile, googleCredentials, {autoLogin: true},
      (err, user, identity, token) => err ? reject(err) : resolve([user, identity, token])));
  users.gil = {instance: gil, password: null};
  addToken('gil-live', 'gil', 'live', 'UserIdentity.login autoLogin', gilToken);

  //    A linked account (UserCredential) on alice: UserCredential.link.
  const ghProfile = {provider: 'github', id: '4242', username: 'alice-gh', displayName: 'Alice'};
  const link = await new Promise((resolve, reject) =>
    UserCredential.link(alice.id, 'github-link', 'oAuth 2.0', ghProfile, {accessToken: 'gho_provider-token'}, {},
      (err, cred) => err ? reject(err) : resolve(cred)));

  // 6. A role with a mapping to alice (counted by the importer, not imported).
  const role = await Role.create({name: 'admin', description: 'fixture role'});
  await role.principals.create({principalType: RoleMapping.USER, principalId: String(alice.id)});

  // Read everything back through the models, so the description holds what
  // the store holds (MariaDB's DATETIME drops milliseconds, for one).
  const byId = {};
  const description = {
    kind: null, source: null,
    versions: {
      node: process.version,
      loopback: require('loopback/package.json').version,
      juggler: require('loopback-datasource-juggler/package.json').version,
      connector: ds.connector.name,
      connectorVersion: connectorVersion(ds.connector.name),
      passport: require('loopback-component-passport/package.json').version,
    },
    models: {user: 'user', token: 'AccessToken', identity: 'UserIdentity', credential: 'UserCredential',
      role: 'Role', roleMapping: 'RoleMapping', builtinUser: 'User'},
    settings: pick(User.settings, ['caseSensitiveEmail', 'allowEternalTokens', 'restrictResetPasswordTokenScope',
      'realmRequired', 'realmDelimiter', 'ttl', 'maxTTL', 'resetPasswordTokenTTL', 'emailVerificationRequired']),
    users: [], tokens: [], identities: [], credentials: [], duplicates: [], roles: [], notes,
    counts: {},
  };
  for (const [key, u] of Object.entries(users)) {
    const row = await User.findById(u.instance.id);
    const o = row.toJSON();
    byId[String(row.id)] = key;
    description.users.push({
      key, id: row.id, email: row.email, username: row.username || null, realm: row.realm || null,
      emailVerified: row.emailVerified === undefined ? null : row.emailVerified,
      verificationToken: row.verificationToken || null,
      password: u.password, passwordHash: row.password,
      placeholderEmail: /@loopback\.[^.@]+\.com$/.test(row.email),
      extra: pick(o, ['fullName', 'age', 'newsletter', 'memberSince', 'tags', 'preferences']),
    });
  }
  for (const t of tokens) {
    if (t.state === 'logged-out') {
      description.tokens.push(Object.assign(tokenJSON(goneSnapshot, byId), {
        key: t.key, user: t.user, state: t.state, note: t.note, inStore: false, lb3: null,
      }));
      continue;
    }
    const row = await AccessToken.findById(t.id);
    if (!row) throw new Error('token ' + t.key + ' is missing from the store');
    description.tokens.push(Object.assign(tokenJSON(row.toObject(), byId), {
      key: t.key, user: t.user, state: t.state, note: t.note, inStore: true,
      lb3: await lbVerdict(AccessToken, row),
    }));
  }
  for (const id of await UserIdentity.find()) {
    description.identities.push(identityJSON(id, byId));
  }
  for (const c of await UserCredential.find()) {
    description.credentials.push(identityJSON(c, byId));
  }
  description.duplicates.push({
    normalized: 'ann@x.com',
    users: ['ann-upper', 'ann-lower'].map((k) => ({key: k, id: users[k].instance.id, email: users[k].instance.email})),
  });
  for (const m of await RoleMapping.find()) {
    const r = await Role.findById(m.roleId);
    description.roles.push({role: r.name, roleId: r.id, principalType: m.principalType, principalId: m.principalId,
      user: byId[m.principalId] || null});
  }
  description.counts = {
    user: await User.count(),
    // app.models.User is the custom model too: app.model() files each model
    // under its classified name as well, so ask the registry for the built-in.
    User: await app.registry.getModel('User').count(),
    AccessToken: await AccessToken.count(),
    UserIdentity: await UserIdentity.count(),
    UserCredential: await UserCredential.count(),
    Role: await Role.count(),
    RoleMapping: await RoleMapping.count(),
  };
  if (ds.connector.name === 'postgresql') {
    notes.push('PostgreSQL lower-cases table names: the built-in User and the custom user share ' +
      'the table public."user", so counts.User equals counts.user');
  }
  if (identity.id == null || link.id == null) throw new Error('passport did not save the identity or credential');
  return description;
}

function tokenJSON(o, byId) {
  return {
    id: o.id, userId: o.userId, ttl: o.ttl,
    created: o.created instanceof Date ? o.created.toISOString() : o.created,
    scopes: o.scopes === undefined ? null : o.scopes,
  };
}

function identityJSON(row, byId) {
  const o = row.toObject();
  return {
    id: o.id, provider: o.provider, authScheme: o.authScheme, externalId: o.externalId,
    userId: o.userId, user: byId[String(o.userId)] || null,
    profile: o.profile, credentials: o.credentials,
    created: o.created ? o.created.toISOString() : null,
    modified: o.modified ? o.modified.toISOString() : null,
  };
}

function pick(o, keys) {
  const r = {};
  for (const k of keys) if (o[k] !== undefined) r[k] = o[k];
  return r;
}

function connectorVersion(name) {
  const pkg = {mysql: 'loopback-connector-mysql', postgresql: 'loopback-connector-postgresql'}[name];
  if (!pkg) return require('loopback-datasource-juggler/package.json').version;
  return require(pkg + '/package.json').version;
}

async function main() {
  const [kind, target] = process.argv.slice(2);
  if (!kind || !target) usage();
  const settings = dataSourceFor(kind, target);
  if (kind === 'memory') {
    // The memory connector loads an existing file and automigrate does not
    // empty it: start from nothing, as a new app would.
    require('fs').rmSync(settings.file, {force: true});
  } else {
    await createDatabase(kind, settings);
  }
  const app = await bootApp(settings);
  const description = await make(app);
  description.kind = kind;
  description.source = settings.file || settings.url;
  await new Promise((resolve) => app.dataSources.db.disconnect(() => resolve()));
  out.write(JSON.stringify(description, null, 2) + '\n', () => process.exit(0));
}

main().catch((err) => {
  console.error('make-store: ' + (err && err.stack || err));
  if (err && err.details) console.error(JSON.stringify(err.details));
  process.exit(1);
});
