package analyzer

import (
	"cmp"
	"slices"
	"strings"
	"unicode"

	"github.com/kljensen/snowball/english"
)

func set(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}

var stopWords = set(`a about above after again against all also am an and any are as at be because been
before being below between both but by can could did do does doing down during each few for from further
had has have having he her here hers herself him himself his how i if in into is it its itself just me
more most my myself no nor not now of off on once only or other our ours ourselves out over own same she
should so some such than that the their theirs them themselves then there these they this those through
to too under until up very was we were what when where which while who whom why will with would you your
yours yourself yourselves via per etc new make made get got let lets let's may might must shall within without
upon across along around like one two three many much every via using use used instead away back
allow allows enable enables ensure sure keep keeps stop put take takes give gives want need needs
s t don't can't won't it's we're they're work works working come comes go goes even never always ever
still high low long short able unable really quite almost whenever right away already`)

// incidental words occur in every kind of work (service, system, users): as
// concepts they would make unrelated tasks look alike, so they are not
// concepts.
var incidental = stems(`service system app application feature user customer team thing way part
step time first last next current existing old anyone someone everyone case level real right left whole
small large big same own`)

// stems is the set of the stems of words.
func stems(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[english.Stem(w, false)] = true
	}
	return m
}

// imperatives open an instruction.
var imperatives = set(`implement build create add fix write design develop refactor update remove delete
migrate deploy configure set setup install test optimize improve make generate convert parse validate
integrate support enable disable handle define document review bake cook prepare let allow stop keep
put take give ship release roll run expose provision automate schedule switch route send serve cache
scan rotate find reduce cut speed protect require replace move split instrument introduce enforce
upgrade investigate translate internationalize localize offer tell highlight show describe publish
explain check seed register deliver emit propagate follow record throttle cap return stabilize
increase decrease wire federate evolve subscribe consume read parse import export render produce
undo revert restore back page notify alert profile extract clean hire buy open convert version`)

// verbs link two concepts; each maps to its relationship type. Words that
// are more often nouns in task texts (queries, calls, stores, checks) are
// left out: they would invent relationships.
var verbs = func() map[string]string {
	m := map[string]string{}
	for typ, words := range map[string]string{
		"uses":            "uses using utilizes utilize utilizing leverages leverage leveraging employs",
		"implements":      "implements implement implementing implemented realizes",
		"extends":         "extends extend extending extended inherits inherit subclasses wraps wrap",
		"contains":        "contains contain containing includes include including comprises",
		"produces":        "produces produce producing generates generating emits emit",
		"calls":           "invokes invoke invoking querying",
		"stores":          "persists persist storing saves",
		"validates":       "validate validates validating verifies verify verifying authenticates authorizes",
		"integrates_with": "integrates connects connect connecting communicates",
		"depends_on":      "requires require requiring needs",
	} {
		for _, w := range strings.Fields(words) {
			m[w] = typ
		}
	}
	return m
}()

// dependVerbs become depends_on when followed by "on".
var dependVerbs = set(`depends depend depending relies rely relying`)

var interrogatives = set(`what why how when where which who whom whose does do is are can could should would will`)

// area is a kind of software work: a theme, the domain it belongs to, and
// its concepts, each a canonical name and the terms that mean it (words or
// phrases, matched after stemming; a term written "=word" matches only that
// exact word, for words whose stem is shared with unrelated words).
type area struct {
	theme    string
	domain   string
	concepts string // lines "concept: term, term, …"
}

var areas = []area{
	{"access control", "security", `
		authentication: auth, authentication, authenticate, authenticated, authn, login, log in, logon, sign in,
			signin, sign on, single sign on, sso, saml, oauth, oauth2, oidc, openid, openid connect, jwt, jwts,
			mfa, 2fa, two factor, multi factor, totp, otp, one time code, one time password, authenticator,
			idp, identity provider, okta, keycloak, auth0, federate, federated, federation, passwordless
		password: password, passphrase, forgot password, password reset, reset password, account recovery
		session: session, cookie
		authorization: =authorization, =authorize, =authorized, authz, permission, rbac, access control, acl,
			role based access`},
	{"application security", "security", `
		vulnerability: vulnerability, vulnerable, cve, security advisory, advisory, snyk, govulncheck, dependabot,
			trivy, sast, dast, exploit, penetration test, pentest, security scan
		secret: secret, secrets manager, vault, credential, api key, access key, private key, key rotation,
			rotate secrets
		encryption: encrypt, encryption, encrypted, decrypt, kms, hashing
		security: security, secure, harden, hardening, xss, csrf, sql injection, injection`},
	{"software testing", "quality", `
		test: test, testing, tested, spec, qa, unit test, integration test, end to end, e2e, test suite,
			test case, test coverage, coverage, cypress, selenium, playwright, jest, pytest, junit, table driven,
			assertion, assert, mock, fixture, flaky, flakiness, contract test, load test, tdd, regression test,
			snapshot test, test plan, test data`},
	{"continuous integration", "quality", `
		ci: ci, continuous integration, ci cd, cicd, ci pipeline, build pipeline, github actions, gitlab ci,
			jenkins, circleci, travis, build server, ci run, workflow run, build time, build cache
		code review: pull request, pr, merge request, code review, reviewer
		lint: lint, linter, linting, eslint, golangci lint, static analysis, go vet, vet, style check,
			prettier, gofmt, formatter`},
	{"release management", "operations", `
		deployment: deploy, deployment, deployed, release, rollout, roll out, ship, shipping, go live,
			production, prod, cluster, canary, blue green, cutover, cut over, rollback, roll back, downtime,
			zero downtime, environment, promote, promotion, progressive delivery, hotfix
		feature flag: feature flag, feature toggle, dark launch, flag, kill switch`},
	{"cloud infrastructure", "operations", `
		infrastructure: infra, infrastructure, terraform, hcl, pulumi, cloudformation, infrastructure as code,
			iac, kubernetes, k8s, helm, vpc, subnet, nat gateway, aws, gcp, azure, cloud, provision,
			provisioning, load balancer, pod, replica, autoscale, autoscaling, autoscaler, hpa, horizontal pod,
			scale out, docker, container, node pool, ansible, dns, cert manager, ingress, nginx, vm,
			virtual machine
		certificate: tls, ssl, certificate, cert, https, acme, let's encrypt, letsencrypt, x509, mtls`},
	{"observability", "operations", `
		monitoring: monitoring, monitor, metric, prometheus, grafana, alert, alerting, alertmanager, pagerduty,
			opsgenie, on call, pager, sli, slo, error rate, 5xx, uptime, health check, datadog, new relic
		logging: log, logging, logger, zap, structured logging, log line, syslog, loki, elk, kibana, fluentd
		tracing: trace, tracing, span, opentelemetry, otel, jaeger, zipkin, trace context, distributed tracing,
			instrument, instrumentation`},
	{"data storage", "data", `
		database: db, database, postgres, postgresql, mysql, mariadb, sql, sqlite, mongodb, mongo, dynamodb,
			cassandra, query, index, btree, b tree, explain analyze, sequential scan, seq scan, full table scan,
			orm, primary key, foreign key, stored procedure, table scan, replica lag, read replica
		migration: migration, migrate, schema migration, schema change, alembic, flyway, liquibase, backfill,
			alter table, add column, ddl, schema
		backup: backup, back up, restore, snapshot, point in time recovery, pitr, pg dump, pg_dump, dump,
			disaster recovery`},
	{"caching", "data", `
		cache: cache, caching, redis, memcached, memcache, ttl, invalidation, invalidate, in memory store,
			cache hit, cache miss, lru, cache control, etag, warm cache
		cdn: cdn, cloudfront, fastly, akamai, cloudflare, edge location, edge cache, static asset,
			static file`},
	{"search", "data", `
		search: search, full text search, elasticsearch, opensearch, solr, lucene, inverted index, relevance,
			ranking, search box, typo tolerance, autocomplete, fuzzy match, search engine`},
	{"analytics", "data", `
		analytics: analytics, etl, data warehouse, warehouse, bigquery, snowflake, redshift, dataset,
			reporting, dashboard, kpi, business intelligence, tracking event, conversion tracking`},
	{"web api", "backend", `
		api: api, endpoint, rest, restful, http, route, handler, graphql, grpc, resolver, api gateway,
			json api, rpc, get request, post request, webhook
		pagination: paginate, pagination, paginated, cursor, next cursor, continuation token,
			next page, offset pagination
		rate limit: rate limit, rate limiting, rate limiter, throttle, throttling, 429, quota, token bucket,
			requests per minute, requests per second`},
	{"messaging", "backend", `
		messaging: queue, kafka, rabbitmq, nats, sqs, sns, pubsub, pub sub, topic, consumer, consumer group,
			producer, message, broker, event stream, event bus, event driven, jetstream, kinesis, redelivery
		dead letter: dead letter, dead letter queue, dlq, redrive, poison message, poison pill, replay`},
	{"user interface", "frontend", `
		ui: ui, ux, frontend, front end, react, vue, angular, svelte, css, html, component, page, button,
			form, layout, modal, browser, web app, stylesheet, style, redesign, tailwind, dom, inline, screen,
			menu, navigation, header, banner, color, colour, font
		accessibility: =accessibility, =accessible, a11y, aria, wcag, screen reader, keyboard navigation,
			focus order, contrast ratio
		theming: dark mode, dark theme, light mode, color scheme, colour scheme, theme`},
	{"localization", "frontend", `
		localization: i18n, l10n, =internationalization, =internationalize, =internationalized, =localization,
			=localize, =localized, =localise, =localisation, =locale, =locales, translation, translate, message catalog,
			language, german, spanish, french, italian, japanese, chinese, portuguese, multilingual, rtl`},
	{"mobile apps", "mobile", `
		mobile: mobile, ios, android, iphone, ipad, phone, handset, smartphone, app store, play store,
			testflight, swift, swiftui, kotlin, react native, flutter, mobile app, native app, device
		push notification: push notification, push, apns, fcm, firebase cloud messaging, firebase,
			device token
		offline: offline, sync, synchronize, synchronization, local storage, connectivity,
			offline first, background sync`},
	{"documentation", "documentation", `
		documentation: doc, docs, document, documentation, documented, readme, guide, tutorial,
			getting started, wiki, api reference, reference documentation, changelog, openapi, swagger,
			runbook, how to, handbook, manual, design doc, design document, release notes
		onboarding: onboarding, onboard, new hire`},
	{"payments and billing", "business", `
		billing: billing, bill, invoice, invoicing, receipt, payment, pay, charge, stripe, paypal, braintree,
			adyen, card payment, credit card, checkout, subscription, recurring billing, refund,
			dunning, tax, vat, payment provider`},
	{"notifications", "communication", `
		email: email, e mail, mail, smtp, sendgrid, ses, amazon ses, mailgun, postmark, inbox, newsletter,
			bounce handling, transactional email, mailing list
		notification: notification, notify, sms, twilio`},
	{"performance", "performance", `
		performance: perf, performance, latency, slow, slowness, fast, faster, speed, speed up, optimize,
			optimise, optimization, throughput, p99, p95, p50, load time, bottleneck, profile, profiling,
			profiler, web vitals, core web vitals, first paint, time to first byte, lazy load, lazy loading,
			bundle size, code splitting, response time, execution time, benchmark, hot path
		memory: memory, memory leak, leak, oom, oom kill, out of memory, heap, resident set, rss, allocation,
			garbage collection, gc`},
}

// software terms that indicate technology without naming a kind of work.
var techWords = stems(`software code server client microservice microservic python golang java javascript
typescript rust backend framework library function algorithm network protocol compiler bug debug git
repository repo json yaml xml programming developer engineer script binary`)

// domainWords are the lexicon of the domains outside software.
var domainWords = func() map[string][]string {
	m := map[string][]string{}
	for domain, words := range map[string]string{
		"business": `revenue sale sales market marketing profit budget finance contract stakeholder
			roadmap pricing cost retail accountant accounting`,
		"science": `experiment hypothesis physics chemistry biology molecule atom energy quantum
			gene protein laboratory measurement observation theory`,
		"academic": `research paper thesis study citation journal university professor student lecture
			course curriculum literature peer`,
		"medical": `patient diagnosis treatment clinical hospital doctor nurse disease symptom therapy
			medication drug surgery health healthcare medicine vaccine`,
		"legal": `law legal court regulation compliance liability statute attorney lawyer litigation gdpr
			license licence agreement privacy`,
		"culinary": `bake baking bread sourdough rye starter flour dough oven recipe cook cooking kitchen
			ingredient yeast butter sugar`,
	} {
		for _, w := range strings.Fields(words) {
			s := stemWord(w)
			m[s] = append(m[s], domain)
		}
	}
	return m
}()

// concept is a canonical concept of the lexicon.
type concept struct {
	name   string
	theme  string
	domain string
}

// phrase is a multi-word term: its stems in order, and what it means.
type phrase struct {
	stems   []string
	concept *concept
}

// compiled is the lexicon ready for lookups: single words by stem (or by
// exact word for "=" terms), phrases by their first stem, longest first.
type compiled struct {
	words   map[string]*concept
	exact   map[string]*concept
	phrases map[string][]phrase
}

var lex = compile(areas)

func compile(areas []area) *compiled {
	c := &compiled{words: map[string]*concept{}, exact: map[string]*concept{}, phrases: map[string][]phrase{}}
	for _, a := range areas {
		var cur *concept
		for line := range strings.Lines(a.concepts) {
			line = strings.TrimSpace(line)
			// "name: terms" starts a concept; a line without it continues one.
			if name, rest, ok := strings.Cut(line, ":"); ok && !strings.Contains(name, ",") {
				cur = &concept{name: strings.TrimSpace(name), theme: a.theme, domain: a.domain}
				line = rest
			}
			for _, term := range strings.Split(line, ",") {
				c.add(strings.TrimSpace(term), cur)
			}
		}
	}
	for _, ps := range c.phrases {
		slices.SortStableFunc(ps, func(x, y phrase) int { return cmp.Compare(len(y.stems), len(x.stems)) })
	}
	return c
}

func (c *compiled) add(term string, to *concept) {
	if term == "" {
		return
	}
	if w, ok := strings.CutPrefix(term, "="); ok {
		c.exact[w] = to
		return
	}
	words := splitWords(term)
	stems := make([]string, len(words))
	for i, w := range words {
		stems[i] = stemWord(w)
	}
	switch {
	case len(stems) == 0:
	case len(stems) == 1:
		// The first area to claim a word keeps it.
		if _, dup := c.words[stems[0]]; !dup {
			c.words[stems[0]] = to
		}
	default:
		c.phrases[stems[0]] = append(c.phrases[stems[0]], phrase{stems: stems, concept: to})
	}
}

// splitWords splits a lexicon term the way tokenize splits text.
func splitWords(term string) []string {
	var out []string
	for _, t := range tokenize(term) {
		out = append(out, t.raw)
	}
	return out
}

// stemWord is the Snowball (Porter2) English stem of a lower-case word.
func stemWord(w string) string {
	if s, ok := stemCache[w]; ok {
		return s
	}
	return english.Stem(w, false)
}

// stemCache holds the stems of the words task texts are full of (stop
// words, verbs, the lexicon's words and their plurals), so that most words
// of a text are stemmed by a map lookup. It is read-only once built.
var stemCache = func() map[string]string {
	m := map[string]string{}
	add := func(w string) {
		if _, ok := m[w]; !ok {
			m[w] = english.Stem(w, false)
		}
	}
	for _, words := range []map[string]bool{stopWords, imperatives, interrogatives, dependVerbs} {
		for w := range words {
			add(w)
		}
	}
	for w := range verbs {
		add(w)
	}
	for _, a := range areas {
		for _, w := range strings.FieldsFunc(a.concepts, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
			w = strings.ToLower(w)
			add(w)
			add(w + "s")
		}
	}
	return m
}()
