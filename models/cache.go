package models

import (
	"sync"
	"time"
)

// authCache keeps recently resolved tokens and users in memory so an
// authenticated request needs no database round trip.
//
// Correctness first: every write this process makes to a token or a user
// drops the entry before the write returns, and a load that raced with such
// a write is not stored (the generation check). An entry is trusted for at
// most fresh, which bounds staleness when something other than Latchkey
// (an admin's SQL shell) changes the database. Other replicas' writes
// arrive through the store's change feed (DB.watch); while the feed is
// down the cache is empty and bypassed.
type authCache struct {
	mu     sync.Mutex
	gen    uint64
	off    bool // the feed is down: answer nothing, keep nothing
	max    int
	fresh  time.Duration
	tokens map[[32]byte]cachedToken
	users  map[int64]cachedUser

	// hits and misses count lookups (session, user) for the metrics.
	// They are plain numbers under mu, which every lookup holds anyway:
	// no atomic of their own on the authenticated request's path.
	hits, misses uint64
}

type cachedToken struct {
	tok    AccessToken
	loaded time.Time
}

type cachedUser struct {
	user   User
	loaded time.Time
}

func newAuthCache(max int, fresh time.Duration) *authCache {
	return &authCache{
		max:    max,
		fresh:  fresh,
		tokens: make(map[[32]byte]cachedToken),
		users:  make(map[int64]cachedUser),
	}
}

// generation is read before a database load and passed to put*.
func (c *authCache) generation() uint64 {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// session fills into with a fresh cached token and, when it is cached and
// fresh too, that token's user, under one lock: the authenticated request's
// fast path needs no second lookup and no copy of the user on the heap.
func (c *authCache) session(d [32]byte, now time.Time, into *Session) (tokenOK, userOK bool) {
	if c == nil {
		return false, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.off {
		c.misses++
		return false, false
	}
	e, ok := c.tokens[d]
	if !ok || !c.isFresh(e.loaded, now) {
		c.misses++
		return false, false
	}
	into.Token = e.tok
	u, ok := c.users[e.tok.UserID]
	if !ok || !c.isFresh(u.loaded, now) {
		c.misses++ // the user is looked up next (FindUserByID): a lookup of its own
		return true, false
	}
	into.User = u.user
	c.hits++
	return true, true
}

// counts are the hits and misses so far.
func (c *authCache) counts() (hits, misses uint64) {
	if c == nil {
		return 0, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses
}

// isFresh reports whether an entry loaded at loaded may still be trusted at now.
func (c *authCache) isFresh(loaded, now time.Time) bool {
	return !now.Before(loaded) && now.Sub(loaded) <= c.fresh
}

func (c *authCache) putToken(t AccessToken, gen uint64, now time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	putIfCurrent(c, c.tokens, t.Digest, cachedToken{tok: t, loaded: now}, gen)
}

// touch records a last_used write so the next request does not repeat it.
func (c *authCache) touch(d [32]byte, at time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.tokens[d]; ok {
		e.tok.LastUsed = at
		c.tokens[d] = e
	}
}

func (c *authCache) user(id int64, now time.Time) (User, bool) {
	if c == nil {
		return User{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.users[id]
	if c.off || !ok || !c.isFresh(e.loaded, now) {
		c.misses++
		return User{}, false
	}
	c.hits++
	return e.user, true
}

func (c *authCache) putUser(u User, gen uint64, now time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	putIfCurrent(c, c.users, u.ID, cachedUser{user: u, loaded: now}, gen)
}

// putIfCurrent stores v unless a write invalidated entries since gen was
// read (the load may have raced it), evicting some entries when full.
// The caller holds c.mu.
func putIfCurrent[K comparable, V any](c *authCache, m map[K]V, k K, v V, gen uint64) {
	if gen != c.gen || c.off {
		return
	}
	if len(m) >= c.max {
		evictSome(m)
	}
	m[k] = v
}

// dropToken forgets one token.
func (c *authCache) dropToken(d [32]byte) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.tokens, d)
}

// dropUser forgets a user and every cached token of theirs.
func (c *authCache) dropUser(id int64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.users, id)
	for d, e := range c.tokens {
		if e.tok.UserID == id {
			delete(c.tokens, d)
		}
	}
}

// bypass empties the cache and, while on, keeps it empty: nothing may be
// trusted while changes by other replicas cannot be heard. Turning it off
// empties it again, for what was missed in between.
func (c *authCache) bypass(on bool) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.off = on
	clear(c.tokens)
	clear(c.users)
}

// evictSome drops about an eighth of a full map (Go's map order is random
// enough for this).
func evictSome[K comparable, V any](m map[K]V) {
	n := len(m)/8 + 1
	for k := range m {
		delete(m, k)
		n--
		if n == 0 {
			return
		}
	}
}
