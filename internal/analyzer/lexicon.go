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
small large big same own data page issue problem change process module logic option setting value item
entry object resource detail type kind status state information info functionality capability behaviour
behavior mechanism approach solution platform project internal external various multiple specific proper
correct better good bad simple basic different additional extra certain possible available related relevant
main primary default custom general common entire quick quickly easy easily automatic automatically manual
manually properly correctly people person software code developer engineer program programming script
function repository repo`)

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
undo revert restore back page notify alert profile extract clean hire buy open convert version
resolve repair debug patch correct troubleshoot diagnose stabilise prevent optimise accelerate tune
shrink minimize minimise lower scale trim transition replatform bump modernize modernise adopt drop
deprecate retire decommission sunset purge prune eliminate uninstall erase archive restructure simplify
reorganize reorganise rename deduplicate rewrite tidy untangle modularize decouple expand extend provide
construct establish offer`)

// workKinds are the kinds of work a task's head verb names, a dimension
// apart from the area it works on: "add tests for the invoice calculator"
// and "fix the rounding bug in the invoice calculator" share their object
// but not their work. Verbs that name an area's own work (test, document,
// deploy, monitor, translate) are left out: the area already says it, and
// "write tests" and "test" must not differ. Keys are words or two-word
// phrases as written, lower-cased.
var workKinds = func() map[string]string {
	m := map[string]string{}
	for kind, words := range map[string]string{
		"bug fixing": `fix fixes resolve repair debug patch correct troubleshoot diagnose investigate
			stabilize stabilise unbreak hotfix prevent address`,
		"optimisation": `optimize optimise speed_up accelerate tune reduce cut shrink minimize minimise
			lower scale trim`,
		"migration and upgrade": `migrate move port switch convert transition replatform upgrade bump
			replace modernize modernise adopt`,
		"removal": `remove delete drop deprecate retire decommission sunset purge prune disable
			turn_off shut_down tear_down get_rid eliminate uninstall erase archive`,
		"refactoring": `refactor restructure simplify reorganize reorganise rename extract split decouple
			modularize modularise deduplicate rewrite tidy clean_up untangle`,
	} {
		for _, w := range strings.Fields(words) {
			m[strings.ReplaceAll(w, "_", " ")] = kind
		}
	}
	return m
}()

// fillers may precede the head verb of a task ("we need to fix", "please
// add").
var fillers = set(`please we i you need needs to should must let's lets have has want wants can could
would also then first`)

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
			idp, identity provider, okta, keycloak, auth0, federate, federated, federation, passwordless,
			passkey, passkeys, webauthn, fido2, magic link, biometric, face id, touch id, ldap, active directory,
			logout, log out, sign out, signout, remember me, pkce,
			api token, personal access token, service account, cognito, entra id, identity
		password: password, passphrase, forgot password, password reset, reset password, account recovery,
			password policy, password strength
		session: session, cookie, session timeout, idle timeout, session expiry
		signup: signup, sign up, registration,  account creation, create account, email verification,
			verify email, confirmation email, invite, invitation
		authorization: =authorization, =authorize, =authorized, =authorise, =authorisation, authz, permission,
			rbac, abac, access control, acl, role based access, roles, privilege, privileges, least privilege,
			entitlement, entitlements, policy engine, opa, scim, impersonation, admin role, access review`},
	{"application security", "security", `
		vulnerability: vulnerability, vulnerable, cve, cves, security advisory, advisory, snyk, govulncheck,
			dependabot alert, trivy, grype, sast, dast, exploit, penetration test, pentest, security scan,
			vulnerability scan, bug bounty, zero day, owasp, cvss, security patch
		secret: secret, secrets manager, vault, credential, api key, access key, private key, key rotation,
			rotate secrets, secret rotation, hashicorp vault, sops, sealed secrets, leaked key
		encryption: encrypt, encryption, encrypted, decrypt, decryption, kms, hashing, hash, bcrypt, argon2,
			at rest, in transit, envelope encryption, cipher, aes, rsa, signing key, key management
		security: security, secure, harden, hardening, xss, cross site scripting, csrf, sql injection, injection,
			ssrf, rce, clickjacking, content security policy, csp, sanitize, sanitise, sanitization, escaping,
			security header, security headers, cors, waf, web application firewall, ddos, brute force,
			threat model, threat modeling, attack surface, malware, phishing, sbom, supply chain`},
	{"privacy and compliance", "compliance", `
		privacy: privacy, gdpr, ccpa, pii, personal data, personally identifiable, data subject, dsar,
			right to be forgotten, erasure request, consent, cookie banner, cookie consent, anonymize,
			anonymise, anonymization, pseudonymize, pseudonymization, redact, redaction, data masking, mask,
			data retention, retention policy, privacy policy, dpa, data processing agreement
		compliance: compliance, compliant, soc2, soc 2, iso 27001, hipaa, pci, pci dss, audit trail, audit log,
			auditor, regulatory, regulation, legal hold, terms of service, license compliance, eula`},
	{"software testing", "quality", `
		test: test, testing, tested, spec, qa, unit test, integration test, end to end, e2e, test suite,
			test case, test coverage, coverage, cypress, selenium, playwright, jest, pytest, junit, mocha,
			vitest, rspec, table driven, assertion, assert, mock, mocks, stub, stubs, fake, fixture, flaky,
			flakiness, contract test, load test, stress test, soak test, tdd, bdd, cucumber, gherkin,
			regression test, smoke test, snapshot test, test plan, test data, acceptance test, fuzz, fuzzing,
			property based, mutation testing, test harness, test runner, testcontainers, golden file,
			manual testing, exploratory testing, test environment, code coverage, k6, locust, jmeter, gatling`},
	{"continuous integration", "quality", `
		ci: ci, continuous integration, ci cd, cicd, ci pipeline, build pipeline, github actions, gitlab ci,
			jenkins, circleci, travis, buildkite, build server, ci run, workflow run, build time, build cache,
			ci runner, runner, build agent, build step, pipeline step, build artifact, artifact, nightly build,
			merge queue, required check, status check, branch protection, monorepo, bazel, build system
		code review: pull request, pr, prs, merge request, code review, =reviewer, =reviewers, review comment
		lint: lint, linter, linting, eslint, golangci lint, static analysis, go vet, vet, style check,
			prettier, gofmt, formatter, code style, rubocop, flake8, pylint, ruff, checkstyle, sonarqube,
			pre commit, pre commit hook, type check, type checking, mypy, tsc`},
	{"release management", "operations", `
		deployment: deploy, deployment, deployed, release, rollout, roll out, ship, go live,
			=production, prod, cluster, =staging, canary, blue green, cutover, cut over, rollback, roll back, downtime,
			zero downtime, environment, promote, promotion, progressive delivery, hotfix,  
			preview environment, release train, release branch, release candidate, semver, semantic versioning,
			version tag, git tag, continuous delivery, continuous deployment, argo cd, argocd, flux, gitops,
			spinnaker, octopus, deployment pipeline, cd pipeline, redeploy, app store release
		feature flag: feature flag, feature flags, feature toggle, dark launch, flag, flags, kill switch,
			launchdarkly, unleash, flagsmith, gradual rollout, percentage rollout, beta users, early access`},
	{"cloud infrastructure", "operations", `
		infrastructure: infra, infrastructure, terraform, hcl, pulumi, cloudformation, infrastructure as code,
			iac, kubernetes, k8s, helm, vpc, subnet, subnets, nat gateway, aws, gcp, azure, cloud, provision,
			provisioning, load balancer, pod, pods, replica, replicas, autoscale, autoscaling, autoscaler, hpa,
			horizontal pod, scale out, scale up, docker, container, containers, dockerfile, docker image,
			container image, node pool, ansible, puppet, dns, route53, cert manager, ingress, nginx,
			envoy, haproxy, reverse proxy, proxy, service mesh, istio, linkerd, vm, vms, virtual machine, ec2,
			ecs, eks, gke, aks, fargate, lambda, serverless, cloud run, cloud functions, s3, bucket, object storage,
			blob storage, gcs, firewall, security group, vpn, =peering, region, availability zone,
			multi region, multi az, network, networking, ip, ipv6, bastion,  daemonset, statefulset,
			kubectl, eksctl, packer, vagrant, nomad, consul, openstack, heroku, fly io, vercel, netlify,
			digitalocean, server fleet, fleet, capacity,  machine image, ami
		certificate: tls, ssl, certificate, certificates, cert, certs, https, acme, let's encrypt,
			letsencrypt, x509, mtls, ca bundle, certificate authority, cert renewal, expiring certificate
		cost: cloud cost, cloud costs, cloud spend, cloud bill, finops, spot instance, spot instances,
			reserved instance, reserved instances, savings plan, savings plans, rightsizing, right size,
			rightsize, idle resources, cost explorer, cost allocation, cost optimization, cost reduction,
			infrastructure cost, aws bill, egress cost, egress costs`},
	{"reliability", "operations", `
		resilience: retry, retries, retrying, backoff, exponential backoff, jitter, circuit breaker, timeout,
			timeouts, failover, fail over, fallback, graceful degradation, degrade gracefully, redundancy,
			high availability, ha, chaos engineering, chaos monkey, bulkhead, idempotent, idempotency,
			idempotency key, graceful shutdown, health probe, liveness probe, readiness probe, self healing,
			disaster recovery,  rto, rpo, resilient, resilience, fault tolerance, fault tolerant
		incident: incident, incidents, outage, outages, postmortem, post mortem, post incident, root cause,
			rca, sev1, sev2, =severity, status page, statuspage, incident response, war room, escalation,
			escalation policy, on call, oncall, on call rotation, pager, pagerduty, opsgenie, mttr, mttd,  playbook, blameless, sla, slas`},
	{"observability", "operations", `
		monitoring: monitoring, monitor, metric, metrics, prometheus, grafana, alert, alerts, alerting,
			alertmanager, sli, slo, slos, error budget, error rate, 5xx, 4xx, uptime, health check,
			datadog, new relic, dynatrace, cloudwatch, stackdriver, apm, synthetic monitoring, heartbeat,
			threshold, observability, telemetry, statsd, graphite, victoriametrics, thanos, golden signals,
			red metrics, saturation, probe, sentry, error tracking, crash reporting, bugsnag, rollbar,
			crashlytics
		logging: log, logs, logging, logger, zap, logrus, slog, structured logging, log line, log lines,
			syslog, loki, elk, kibana, fluentd, fluent bit, logstash, splunk, papertrail, log level,
			log rotation, log retention, log aggregation, audit event, access log
		tracing: trace, traces, tracing, span, spans, opentelemetry, otel, jaeger, zipkin, trace context,
			trace id, distributed tracing, instrument, instrumentation, correlation id, request id,  honeycomb, x ray, xray`},
	{"data storage", "data", `
		database: db, dbs, database, databases, postgres, postgresql, psql, mysql, mariadb, sql, sqlite,
			mongodb, mongo, dynamodb, cassandra, scylla, cockroachdb, aurora, rds, cloud sql, spanner, neo4j,
			couchdb, firestore, supabase, oracle db, sql server, mssql, query, queries, index, indexes,
			=indices, btree, b tree, explain analyze, explain plan, query plan, sequential scan, seq scan,
			full table scan, n+1, orm, prisma, sqlalchemy, hibernate, active record, gorm, primary key,
			foreign key, constraint, unique constraint, stored procedure, table scan, replica lag,
			read replica, replication, sharding, shard, shards, partition, partitioning,  deadlock, deadlocks, row lock, lock contention, connection pool, pgbouncer,
			vacuum, autovacuum, database transaction, materialized view, denormalize, =normalization, data model,
			data modeling
		migration: migration, migrations, migrate, schema migration, schema change, alembic, flyway,
			liquibase, backfill, backfills, alter table, add column, drop column, ddl, schema, schemas,
			data migration, migration script, rename column, column type, nullable, not null
		backup: backup, backups, back up, restore, restores, snapshot, snapshots, point in time recovery,
			pitr, pg dump, pg_dump, mysqldump, dump, restore drill, backup retention, wal, wal archiving`},
	{"caching", "data", `
		cache: cache, caches, caching, cached, redis, memcached, memcache, ttl, =invalidation, =invalidate,
			cache invalidation, in memory store, cache hit, cache miss, hit rate, hit ratio, lru, cache control,
			etag, warm cache, cache warming, cache key, stale while revalidate, varnish, write through,
			read through, memoize, memoization
		cdn: cdn, cloudfront, =fastly, akamai, cloudflare, edge location, edge locations, edge cache, 
			static asset, static assets, static file, static files, asset pipeline, fingerprinted assets`},
	{"search", "data", `
		search: search, full text search, full text, elasticsearch, elastic, opensearch, solr, lucene,
			algolia, meilisearch, typesense, inverted index, relevance, ranking, search box, search bar,
			typo tolerance, autocomplete, autosuggest, fuzzy match, fuzzy search, search engine, search index,
			reindex, reindexing, facet, facets, faceted, synonyms, stemming, =tokenizer, bm25, vector search,
			semantic search, search results, query suggestions`},
	{"data engineering", "data", `
		analytics: analytics, =reporting, dashboard, dashboards, etl, elt, data warehouse, warehouse, bigquery, snowflake, redshift, databricks,
			dataset, datasets, kpi, kpis, business intelligence, bi, looker,
			tableau, metabase, power bi, tracking event, conversion tracking, event tracking,  mixpanel,
			amplitude, google analytics, funnel, cohort, retention curve, a b test, ab test,  experimentation
		data pipeline: data pipeline, data pipelines, pipeline job, airflow, dag, dags, dbt, spark, pyspark,
			hadoop, flink, beam, data lake, lakehouse, parquet, avro, delta lake, iceberg, ingestion, ingest,
			data quality, data contract, lineage, cdc, change data capture, debezium, fivetran, airbyte,
			csv export, csv import, data export, data import, bulk import, bulk export
		machine learning: machine learning, ml, model training, inference, llm, llms, =embedding,
			=embeddings,  fine tune, fine tuning, classifier, 
			feature store, mlops, pytorch, tensorflow, model serving, openai, gpt, rag, vector database`},
	{"web api", "backend", `
		api: api, apis, endpoint, endpoints, rest, restful, http, route, routes, routing, handler, handlers,
			graphql, query language, grpc, protobuf, proto, =resolver, =resolvers, api gateway, json api, rpc, get request,
			post request, webhook, webhooks, openapi spec, api version, api versioning, status code,
			response code, payload, request body, response body, json schema, serialization, deserialization,
			serialize, deserialize, middleware, sdk, client library, api client, query parameter,
			query parameters, path parameter, http method, put request, delete request, patch request,
			trpc, soap, wsdl, fastapi,  django, flask, =rails, spring boot,   nestjs, laravel
		pagination: paginate, pagination, paginated, cursor, next cursor, continuation token,
			next page, offset pagination, page size, page token, limit offset, infinite scroll
		rate limit: rate limit, rate limits, rate limiting, rate limiter, throttle, throttling, 429, quota,
			quotas, token bucket, leaky bucket, requests per minute, requests per second, rps, qps,
			burst limit, usage limit, usage limits, abuse protection`},
	{"messaging", "backend", `
		messaging: queue, queues, kafka, rabbitmq, amqp, nats, sqs, sns, pubsub, pub sub, topic, topics,
			consumer, consumers, consumer group, producer, producers, message, messages, broker, event stream,
			event bus, event driven,  jetstream, kinesis, eventbridge, redelivery, ack, acks,
			exactly once, at least once, ordering guarantee, outbox, transactional outbox, saga, event sourcing,
			cqrs, mqtt, zeromq, service bus, partition key, offset commit, consumer lag
		dead letter: dead letter, dead letter queue, dead letters, dlq, redrive, poison message, poison pill,
			replay, reprocess, reprocessing, delivery attempts, max deliveries
		realtime: websocket, websockets, web socket, socket io, server sent events, sse, long polling,
			real time, realtime, live update, live updates, presence, chat, pusher, ably, signalr, push updates`},
	{"job scheduling", "backend", `
		scheduled job: cron, cronjob, cron job, cron jobs, crontab, scheduler, scheduled job, scheduled jobs,
			scheduled task, scheduled tasks, nightly job, batch job, batch jobs, batch, batch processing,
			background job, background jobs, background worker, background task, job queue, worker pool,
			sidekiq, celery, resque, bullmq, hangfire, quartz, periodic task, recurring job, recurring task,
			 =nightly, =hourly, daily job, weekly job,  step functions, workflow engine`},
	{"file handling", "backend", `
		file upload: upload, uploads, uploaded, file upload, file uploads, attachment, attachments, multipart,
			presigned url, signed url, download, downloads, file storage, file size, mime type, virus scan
		media: image, images, thumbnail, thumbnails, resize, resizing, crop, video, videos, transcode,
			transcoding, ffmpeg, imagemagick, media, audio, webp, avif, jpeg, png, gif, svg, image processing
		document generation: pdf, pdfs, pdf generation, docx, spreadsheet, xlsx, print layout, printable`},
	{"user interface", "frontend", `
		ui: ui, ux, frontend, front end, react, vue, angular, svelte, nextjs, next js, nuxt, css, scss, sass,
			html, component, components, button, buttons, form, forms, layout, modal, modals, dialog, browser,
			browsers, web app, webapp, stylesheet, style, styles, styling, redesign, tailwind, bootstrap, dom,
			screen, screens, menu, menus, navigation, nav, navbar, sidebar, header, footer, banner, color,
			colour, font, fonts, typography, icon, icons, tooltip, tooltips, dropdown, dropdowns, toast,
			snackbar, carousel, tab, tabs, checkbox, radio button, date picker, input field, text field,
			textarea, placeholder, spinner, loading state, empty state, skeleton, =responsive, responsive design,
			breakpoint, viewport, media query, animation, animations,  hover, drag and drop,
			wireframe, mockup, mockups, figma, prototype, design system, storybook, ux research, usability,
			user experience, user interface, web page, landing page, home page, homepage, settings page,
			widget, widgets, pixel, =spacing, alignment, grid, flexbox, webpack, vite, esbuild,
			javascript bundle, spa, single page app, client side, client side validation, form validation,
			inline validation, error message, error messages,  microcopy, onboarding flow
		accessibility: =accessibility, =accessible, =inaccessible, a11y, aria, aria label, aria labels, wcag,
			screen reader, screen readers, voiceover, talkback, nvda, jaws, keyboard navigation,
			keyboard accessible, focus order, focus trap, focus ring, tab order, contrast ratio, color contrast,
			colour contrast, alt text, captions, subtitles, skip link, section 508, ada, reduced motion,
			color blind, colour blind
		theming: dark mode, dark theme, light mode, light theme, color scheme, colour scheme, theme, themes,
			theming, prefers color scheme, brand colors, branding`},
	{"localization", "frontend", `
		localization: i18n, l10n, =internationalization, =internationalize, =internationalized,
			=internationalisation, =internationalise, =localization, =localize, =localized, =localise,
			=localised, =localisation, =locale, =locales, translation, translations, translate, translated,
			translator, message catalog, language, languages, german, spanish, french, italian, japanese,
			chinese, portuguese, korean, arabic, hebrew, dutch, russian, multilingual, rtl, right to left,
			pluralization, plural forms, gettext, icu message, crowdin, lokalise, transifex, phrase app,
			date format, number format, currency format, time zone, timezone, timezones, unicode, utf 8`},
	{"mobile apps", "mobile", `
		mobile: mobile, =ios, android, iphone, ipad, phone, phones, handset, smartphone, tablet, app store,
			play store, google play, play console, app store connect, testflight, swift, swiftui, uikit,
			objective c, kotlin, jetpack compose, react native, flutter, dart, expo, mobile app, mobile apps,
			native app, device, devices, xcode, android studio, gradle, cocoapods, apk, aab, ipa, app review,
			deep link, deep links, deep linking, universal link, universal links, app link, in app,
			in app purchase, app launch, cold start, launch screen, splash screen, emulator, =simulator
		push notification: push notification, push notifications, push, apns, fcm,
			firebase cloud messaging, firebase, device token, onesignal, notification permission
		offline: offline, sync, syncing, synchronize, synchronise, synchronization, local storage,
			=connectivity, offline first, background sync, conflict resolution, local database, realm, core data`},
	{"documentation", "documentation", `
		documentation: doc, docs, document, documentation, documented, readme, guide, guides, tutorial,
			tutorials, getting started, wiki, api reference, reference documentation, reference docs,
			changelog, openapi, swagger, redoc, how to, handbook, manual, design doc, design document,
			release notes, adr, architecture decision, architecture decision record, docstring, docstrings,
			godoc, javadoc, jsdoc, code comments, docs site, docusaurus, mkdocs, sphinx, confluence,
			knowledge base, faq, help center, help article, help articles, user guide, example code,
			sample code, code samples, walkthrough, diagram, diagrams, rfc, =specification, =specifications
		onboarding: onboarding, onboard, new hire, new hires, new joiner, new engineers`},
	{"developer tooling", "maintenance", `
		developer experience: developer experience, dx, dev environment, development environment,
			local development, local dev, local setup, devcontainer, dev container, docker compose, makefile,
			make target, cli, command line, cli tool, internal tool, =tooling, scaffolding, code generation,
			codegen,  hot reload, live reload, debugger, ide, vscode, editor config, dotfiles,
			bootstrap script, setup script, dev server, seed data, seed script
		dependency: =dependency, =dependencies, deps, package, packages, third party, third party library,
			npm, yarn, pnpm, pip, pipenv, poetry, maven, cargo, go mod, go modules, go sum, =composer,
			bundler, gem, gems, nuget, lockfile, lock file, package json, package lock, requirements txt,
			renovate, dependabot, version pin, transitive dependency, =vendoring,
			major version, minor version, patch version, deprecated api, end of life, eol, sdk version,
			runtime version, node version, python version, go version, java version, outdated
		code quality: refactor, refactoring, refactored, tech debt, technical debt, dead code, unused code,
			=duplication, duplicate code, code smell, code smells, legacy code, legacy, spaghetti, cyclomatic complexity,
			 god class, monolith, modularize, modularise, decouple, decoupling, =coupling,
			separation of concerns, clean code, readability, =maintainability,
			design pattern, type safety, strict mode, type hints, =generics, dependency injection`},
	{"payments and billing", "business", `
		billing: billing, bill, bills, invoice, invoices, invoicing, receipt, receipts, payment, payments, pay,
			paid, charge, charges, stripe, paypal, braintree, adyen,  card payment, credit card,
			debit card, checkout, subscription, subscriptions, recurring billing, refund, refunds, dunning,
			tax, taxes, vat, sales tax, payment provider, payment gateway, payment method, apple pay,
			google pay, wallet, pricing plan, pricing plans, pricing tier, plan upgrade, plan downgrade,
			usage based billing, metered billing, metering, coupon, coupons, discount, discounts, promo code,
			free trial, trial, proration, prorate, chargeback, chargebacks, dispute, disputes, payout, payouts,
			ledger, currency, currencies, exchange rate, price, prices, pricing, amount due, balance, sepa,
			ach, wire transfer, 3d secure, sca,  card details, billing portal`},
	{"commerce", "business", `
		commerce: =shipping, =shipment, =shipments, cart, carts, shopping cart, basket, storefront, catalog, catalogue, product catalog,
			product catalogue, inventory, stock level, stock levels, sku, skus,
			fulfilment, fulfillment, delivery address, order history, purchase, purchases, marketplace,
			wishlist, merchant, merchants, seller, sellers,  e commerce, ecommerce, shopify, magento,
			woocommerce, product page, product pages, order confirmation`},
	{"customer support", "business", `
		support ticket: support ticket, support tickets, helpdesk, help desk, zendesk, freshdesk, intercom,
			customer support, support team, support agent, live chat, ticketing, sla breach, feedback form,
			nps, survey, surveys, crm, salesforce, hubspot`},
	{"notifications", "communication", `
		email: email, emails, e mail, mail, mailer, smtp, sendgrid, ses, amazon ses, mailgun, postmark,
			mailchimp, inbox, inboxes, newsletter, newsletters, bounce, bounces, bounce handling,
			transactional email, transactional emails, mailing list, unsubscribe, email template,
			email templates, dkim, spf, dmarc, =deliverability, spam, digest email, email digest
		notification: notification, notifications, notify, sms, text message, twilio, vonage, in app notification,
			 notification center, notification preferences, reminder, reminders, slack notification,
			 slack message, webhook notification, alert email`},
	{"performance", "performance", `
		performance: perf, performance, latency, latencies, slow, slower, slowness, sluggish, fast, faster,
			speed, speed up, optimize, optimise, optimization, optimisation, throughput, p99, p95, p90, p50,
			percentile, load time, load times, page load, page speed, bottleneck, bottlenecks,
			=profiling, =profiler, pprof, flame graph, flamegraph, web vitals, core web vitals, lcp, cls, inp,
			fid, ttfb, first paint, first contentful paint, time to first byte, time to interactive,
			lighthouse, lazy load, lazy loading, bundle size, code splitting, tree shaking, minify,
			minification, compression, gzip, brotli, response time, response times, execution time, benchmark,
			benchmarks, hot path, cpu, cpu usage, high cpu, concurrency, parallelism, parallelize,
			n plus one, capacity planning, scalability, scalable, scale, scaling, high load, under load, heavy load,
			 prefetch, preload, debounce, throttled rendering, render time, rendering performance
		memory: memory, memory leak, leak, leaks, oom, oom kill, oomkilled, out of memory, heap, heap dump,
			resident set, rss, allocation, allocations, garbage collection, gc, memory usage, memory footprint,
			ram, swap`},
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
