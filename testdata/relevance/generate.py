#!/usr/bin/env python3
"""Write pairs.jsonl, the labelled task/pattern relevance set (see README.md).

Standard library only; the output is the same on every run:

    python3 testdata/relevance/generate.py

Every text lives in this file. A task comes with patterns of four kinds:

  related     the same kind of work, usually sharing words        label 1
  paraphrase  the same kind of work in other words                label 1
  near_miss   shares salient words, but is a different job        label 0
  unrelated   work from another area                              label 0

Unrelated patterns are drawn (seeded) from the related and paraphrase
patterns of tasks in other, non-adjacent topics, the way a pattern library
is shared by every task. vector_similarity is synthetic: there is no
embedding model here, so it is drawn per kind from a seeded normal
distribution that imitates a good but imperfect embedding model.
"""

import json
import os
import random

SEED = 20240612

# The five-task block: task i is related to pattern i, unrelated to the rest.
BLOCK_PATTERNS = [
    "Implement user authentication",
    "Write unit tests for service",
    "Deploy to production environment",
    "Optimize database queries",
    "Build REST API endpoints",
]
BLOCK_TASKS = [
    ("auth", "Add login with OAuth2 and session tokens", "paraphrase"),
    ("testing", "Create integration tests", "related"),
    ("deployment", "Release the service to the production cluster", "paraphrase"),
    ("database", "Speed up slow SQL queries on the orders table", "related"),
    ("api", "Expose an HTTP endpoint for creating orders", "related"),
]

# Topics close enough that a pattern from one may be relevant to a task of
# the other: never used as each other's unrelated patterns.
ADJACENT = {
    ("auth", "security"),
    ("testing", "ci"),
    ("deployment", "ci"),
    ("deployment", "infrastructure"),
    ("infrastructure", "security"),
    ("database", "performance"),
    ("database", "caching"),
    ("performance", "caching"),
    ("performance", "observability"),
    ("ui", "mobile"),
    ("ui", "i18n"),
    ("notifications", "mobile"),
    ("api", "docs"),
}

# Each entry: topic, task, related patterns, paraphrases, near misses.
TASKS = [
    ("auth",
     "Add multi-factor authentication to the admin console",
     ["Implement two-factor authentication with TOTP codes",
      "Add MFA enrollment and verification for admin users"],
     ["Require a one-time code from an authenticator app when staff sign in",
      "Protect back-office logins with a second verification step"],
     ["Redesign the layout of the admin console dashboard",
      "Write end-user documentation for the admin console"]),
    ("auth",
     "Support single sign-on with SAML for enterprise customers",
     ["Integrate SAML SSO with Okta and Azure AD",
      "Add enterprise single sign-on through SAML identity providers"],
     ["Let corporate users log in with their company identity provider",
      "Federate sign-in with each customer's IdP"],
     ["Build a pricing page for enterprise customers",
      "Export the list of enterprise customers to a CSV report"]),
    ("api",
     "Add cursor-based pagination to the REST list endpoints",
     ["Implement pagination for the orders list API endpoint",
      "Return paginated results with next cursors from REST collections"],
     ["Let clients fetch large collections page by page with a continuation token",
      "Stop returning every record at once from GET /users; return them in chunks with a link to the next chunk"],
     ["Add pagination controls to the orders table in the web UI",
      "Write tests for the list endpoints' error responses"]),
    ("api",
     "Add rate limiting to the public API",
     ["Implement per-client rate limits on API requests",
      "Throttle public API calls with a token bucket and return 429"],
     ["Cap how many requests each API key can make per minute",
      "Protect the HTTP gateway from clients that flood it with calls"],
     ["Document the public API for partner developers",
      "Version the public API under a /v2 prefix"]),
    ("api",
     "Design a GraphQL schema for the product catalogue",
     ["Build GraphQL queries and types for products and categories",
      "Expose the catalogue through a GraphQL API with resolvers"],
     ["Let the storefront ask for exactly the product fields it needs in one request",
      "Add a typed query language endpoint over items, prices and categories"],
     ["Fix the broken product images in the catalogue page",
      "Import the product catalogue from the supplier's spreadsheet"]),
    ("testing",
     "Add unit tests for the invoice total calculator",
     ["Write unit tests covering tax and discount calculation",
      "Increase test coverage of the billing calculation module"],
     ["Check the invoice arithmetic with table-driven cases for rounding and currencies",
      "Make sure a mistake in computing amounts due is caught before merge"],
     ["Fix the rounding bug in the invoice total calculator",
      "Refactor the invoice calculator into smaller functions"]),
    ("testing",
     "Fix flaky end-to-end tests in the checkout flow",
     ["Stabilize intermittently failing e2e tests for checkout",
      "Make the Cypress checkout tests deterministic"],
     ["Browser scenarios for paying an order fail randomly on the build server; make them reliable",
      "Remove timing races from the QA suite that drives the purchase pages"],
     ["Speed up the checkout flow for returning customers",
      "Add Apple Pay to the checkout flow"]),
    ("deployment",
     "Set up blue-green deployments for the web service",
     ["Implement blue/green deployment with traffic switching",
      "Deploy the new version alongside the old one and switch the load balancer"],
     ["Ship releases without downtime by running two identical environments and flipping traffic",
      "Cut over production to a freshly rolled-out stack and keep the previous one for instant fallback"],
     ["Add a health check endpoint to the web service",
      "Write a design document for the web service's data model"]),
    ("deployment",
     "Roll back the failed release of the payments service",
     ["Revert the payments service to the previous deployed version",
      "Roll back a bad deployment in production"],
     ["Undo yesterday's broken rollout of the payment backend",
      "Put the last good build of the checkout charging component back into production"],
     ["Investigate failed payments reported by customers",
      "Write release notes for the payments service"]),
    ("deployment",
     "Roll out the new pricing engine gradually with a canary release",
     ["Canary deploy the pricing service to 5% of traffic",
      "Progressive rollout of a new release with automated promotion"],
     ["Ship the new version to a small slice of users first and widen it if error rates stay flat",
      "Release to one pod, watch the metrics, then promote to the whole fleet"],
     ["Change the pricing rules for annual plans",
      "Write unit tests for the pricing engine's discount rules"]),
    ("database",
     "Write a migration that adds a status column to the orders table",
     ["Add a database schema migration for a new column",
      "Create an Alembic migration altering the orders table"],
     ["Evolve the Postgres schema so each purchase records its state, with a backfill",
      "ALTER TABLE to store order state and ship the change as a versioned script"],
     ["Show the order status in the customer's order history page",
      "Send an email when an order's status changes"]),
    ("database",
     "Add an index to fix the slow customer lookup query",
     ["Create a database index to speed up customer queries",
      "Optimize the slow SQL query behind customer search"],
     ["The customers-by-email lookup does a sequential scan; make Postgres use a btree",
      "Cut the execution time of the account lookup shown in EXPLAIN ANALYZE"],
     ["Add a lookup field for customers in the support form",
      "Write documentation for the customer lookup page"]),
    ("database",
     "Set up nightly backups of the production database",
     ["Schedule automated database backups with point-in-time recovery",
      "Back up the Postgres database every night to object storage"],
     ["Make sure we can restore yesterday's data if the primary is lost",
      "Take a pg_dump snapshot each night and keep thirty days of copies"],
     ["Seed the staging database with production-like data",
      "Upgrade the production database to the next major version"]),
    ("ui",
     "Add client-side validation to the signup form",
     ["Validate signup form fields in the browser before submit",
      "Show inline validation errors on the registration form"],
     ["Tell people right away in the page when their email or password field is wrong",
      "Highlight invalid inputs as the user types in the React sign-up component"],
     ["Add server-side validation of signup requests in the API",
      "Track signup conversion in the analytics dashboard"]),
    ("ui",
     "Implement a dark mode theme for the web app",
     ["Add a dark theme toggle with CSS variables",
      "Support dark mode in the web application's styles"],
     ["Offer a low-light color scheme that follows the operating system setting",
      "Let users switch the interface to light text on a dark background"],
     ["Add a theme field to the user settings API",
      "Implement a dark launch of the new web app behind a flag"]),
    ("ui",
     "Make the navigation menu accessible to screen readers",
     ["Add ARIA labels and keyboard navigation to the menu",
      "Fix accessibility issues in the site navigation"],
     ["Let blind users move through the header links with a keyboard and hear what each one is",
      "Meet WCAG for the top bar: focus order, roles and announced names"],
     ["Reorder the navigation menu items by usage",
      "Write an accessibility statement for the legal pages"]),
    ("infrastructure",
     "Provision the staging VPC and subnets with Terraform",
     ["Write Terraform modules for VPC networking",
      "Create the cloud network for staging as infrastructure as code"],
     ["Describe the AWS network, private and public subnets and NAT in HCL and apply it",
      "Stop clicking through the console to build environments; declare them in version-controlled config"],
     ["Deploy the staging frontend to the new environment",
      "Seed the staging database with test accounts"]),
    ("infrastructure",
     "Configure horizontal pod autoscaling for the API deployment on Kubernetes",
     ["Add an HPA to scale the API pods on CPU",
      "Autoscale Kubernetes deployments based on load"],
     ["Let the cluster add and remove replicas of the service as traffic changes",
      "Grow the number of k8s workloads automatically when requests pile up"],
     ["Write API documentation for the deployment endpoints",
      "Add load tests for the API"]),
    ("infrastructure",
     "Automate TLS certificate renewal for our domains",
     ["Set up cert-manager to renew Let's Encrypt certificates",
      "Automatically renew expiring TLS certificates"],
     ["Stop HTTPS from breaking every ninety days by refreshing certs without anyone doing it by hand",
      "Issue and rotate SSL certs for every hostname through ACME"],
     ["Buy the new domains for the marketing campaign",
      "Add certificate-based client authentication to the admin API"]),
    ("observability",
     "Add Prometheus alerts for high error rates",
     ["Create alerting rules on the 5xx error rate",
      "Set up Alertmanager alerts for failing requests"],
     ["Page the on-call engineer when too many requests fail",
      "Notify us when the share of server errors crosses a threshold for five minutes"],
     ["Reduce the error rate of the image upload endpoint",
      "Translate error messages shown to users"]),
    ("observability",
     "Switch the services to structured JSON logging",
     ["Emit structured logs in JSON with request ids",
      "Replace printf logging with a structured logger"],
     ["Make every log line machine-readable with key-value fields so we can query it",
      "Use zap with fields instead of formatted strings for the service output"],
     ["Parse the JSON payloads of incoming webhooks",
      "Delete old log files from the servers"]),
    ("observability",
     "Add distributed tracing across the microservices",
     ["Instrument services with OpenTelemetry traces",
      "Propagate trace context between microservices"],
     ["Follow one request through every hop in Jaeger to see where the time goes",
      "Record spans for each call between backends and ship them to a collector"],
     ["Split the monolith into microservices",
      "Add contract tests between the microservices"]),
    ("messaging",
     "Build a Kafka consumer that processes order events",
     ["Implement a Kafka consumer group for order events",
      "Consume order messages from a topic and update inventory"],
     ["Read purchase notifications from the event stream and act on each one",
      "Subscribe to the orders topic and handle every record idempotently"],
     ["Add an orders report to the admin dashboard",
      "Write unit tests for the order total calculation"]),
    ("messaging",
     "Route failed messages to a dead letter queue and retry them",
     ["Add a dead-letter queue with retry policy for consumers",
      "Handle poison messages with a DLQ and redrive"],
     ["Park jobs that keep failing somewhere safe instead of blocking the queue, and replay them later",
      "After five delivery attempts move the event aside for inspection and reprocessing"],
     ["Show failed payments in the billing page",
      "Retry failed HTTP calls to the shipping provider"]),
    ("security",
     "Scan dependencies for known vulnerabilities in CI",
     ["Add a dependency vulnerability scan to the pipeline",
      "Run Snyk or govulncheck on every build"],
     ["Fail the build when a third-party package has a published CVE",
      "Check our libraries against security advisories automatically on each merge"],
     ["Update the CI runner to a newer machine image",
      "Remove unused dependencies from the frontend"]),
    ("security",
     "Rotate the database credentials and API secrets",
     ["Implement automatic secret rotation with Vault",
      "Rotate leaked API keys and database passwords"],
     ["Replace every stored password and token the services use with fresh ones, without downtime",
      "Move hard-coded keys out of the repo into a secrets manager and renew them"],
     ["Rotate the log files daily",
      "Add an API for customers to manage their own API keys"]),
    ("performance",
     "Fix the memory leak in the image processing worker",
     ["Find and fix a memory leak in a background worker",
      "Worker process memory grows until OOM kill; fix the leak"],
     ["The thumbnail job's resident set keeps climbing for hours until the container is killed",
      "Profile heap allocations of the resizing daemon and release buffers that are never freed"],
     ["Add support for WebP images in the image worker",
      "Scale the number of image processing workers"]),
    ("performance",
     "Reduce the page load time of the storefront homepage",
     ["Improve homepage load performance and Core Web Vitals",
      "Make the storefront homepage load faster"],
     ["Cut time to first paint of the shop's landing page by lazy loading images and splitting bundles",
      "The main shopping page takes six seconds on mobile; get it under two"],
     ["Add a new banner to the storefront homepage",
      "Translate the storefront homepage into French"]),
    ("docs",
     "Document the REST API with an OpenAPI specification",
     ["Write OpenAPI docs for every REST endpoint",
      "Generate API reference documentation from a Swagger spec"],
     ["Describe each route, its parameters and responses in a machine-readable spec for integrators",
      "Publish a reference that partners can read to call our HTTP interface"],
     ["Add a REST endpoint for exporting invoices",
      "Validate API requests against the JSON schema"]),
    ("docs",
     "Write an onboarding guide for new backend engineers",
     ["Create developer onboarding documentation for the backend",
      "Write a getting-started guide for engineers joining the team"],
     ["Explain how to set up a laptop, run the services locally and ship a first change",
      "Put together the README a newcomer needs in their first week"],
     ["Hire two new backend engineers",
      "Set up laptops for new engineers"]),
    ("mobile",
     "Add push notifications to the iOS and Android apps",
     ["Implement push notifications with APNs and FCM",
      "Send mobile push notifications for order updates"],
     ["Alert phone users when their parcel ships, even when the app is closed",
      "Register device tokens and deliver messages to handsets through Firebase"],
     ["Fix the crash on launch in the Android app",
      "Add email notifications for order updates"]),
    ("mobile",
     "Let the mobile app work offline and sync when back online",
     ["Add offline mode with local storage and background sync",
      "Sync mobile app data after connectivity returns"],
     ["Keep the phone client usable without a network and reconcile edits later",
      "Queue changes on the device in SQLite and upload them when the connection comes back"],
     ["Show an offline banner on the website",
      "Publish the mobile app to the App Store"]),
    ("ci",
     "Speed up the CI pipeline with dependency caching",
     ["Cache Go modules and npm packages between CI runs",
      "Reduce CI build time by caching dependencies"],
     ["Builds spend five minutes downloading the same libraries every time; keep them between jobs",
      "Make GitHub Actions restore the package store from the previous workflow"],
     ["Add a Redis cache in front of the pricing service",
      "Speed up the search API"]),
    ("ci",
     "Run linters and static analysis on every pull request",
     ["Add golangci-lint and eslint checks to pull requests",
      "Enforce static analysis in the CI pipeline for each PR"],
     ["Block merges that fail style and vet checks",
      "Have the build bot comment on code review with lint findings"],
     ["Review the open pull requests from last week",
      "Write a style guide for the frontend code"]),
    ("caching",
     "Cache product lookups in Redis",
     ["Add a Redis cache in front of product database reads",
      "Cache product details with a TTL and invalidation on update"],
     ["Keep recently read items in an in-memory store so the catalogue service stops hitting Postgres",
      "Serve repeated requests for the same SKU from memcached instead of the primary"],
     ["Use Redis streams to publish product change events",
      "Upgrade the Redis cluster to version 7"]),
    ("caching",
     "Serve static assets through a CDN with long cache lifetimes",
     ["Put static files behind CloudFront with cache headers",
      "Configure CDN caching for images, CSS and JavaScript"],
     ["Deliver the front-end bundles from edge locations near users and let browsers keep them for a year",
      "Set Cache-Control immutable on fingerprinted scripts and stylesheets served from the edge"],
     ["Compress the static images in the design repository",
      "Move the static marketing site to a new domain"]),
    ("billing",
     "Integrate Stripe subscriptions for monthly plans",
     ["Implement recurring billing with Stripe subscriptions",
      "Charge customers monthly through the Stripe API"],
     ["Take card payments every month for paid tiers and handle renewals and cancellations",
      "Wire up the payment provider's webhooks so plan upgrades and failed charges update accounts"],
     ["Add a monthly plans comparison table to the pricing page",
      "Write a monthly report of new subscriptions for finance"]),
    ("billing",
     "Generate PDF invoices for each payment",
     ["Create invoice PDFs after successful charges",
      "Render and email PDF invoices to customers"],
     ["Produce a printable bill with line items, taxes and company details once a customer pays",
      "Give accountants a downloadable receipt document for every transaction"],
     ["Generate PDF exports of analytics reports",
      "Fix duplicate payments in the checkout"]),
    ("search",
     "Add full-text search over help center articles",
     ["Implement full-text search for articles with Elasticsearch",
      "Index help articles and add a search box"],
     ["Let visitors type a question and find the support pages that answer it, ranked by relevance",
      "Build an inverted index over the knowledge base with stemming and typo tolerance"],
     ["Write new help center articles about billing",
      "Add search engine optimization tags to the help center"]),
    ("notifications",
     "Send transactional emails through a provider with templates",
     ["Integrate SendGrid for transactional email templates",
      "Send password reset and receipt emails via an email service"],
     ["Deliver account and order messages to inboxes with branded layouts and bounce handling",
      "Use Amazon SES to mail customers when something happens to their account"],
     ["Clean up the marketing email list",
      "Add a template for the quarterly report document"]),
    ("i18n",
     "Translate the web app into German and Spanish",
     ["Add German and Spanish translations for the UI",
      "Internationalize the frontend strings and add locales"],
     ["Make the interface available to users in Germany and Spain in their own language",
      "Extract hard-coded English text into message catalogs and get them localized"],
     ["Open a sales office in Germany",
      "Convert prices to euros on the checkout page"]),
]


def pick_unrelated(rng, topic, task, pool, n=2):
    """n patterns from other tasks of topics neither equal nor adjacent."""
    candidates = sorted(
        text for (other_topic, other_task, text) in pool
        if other_topic != topic and other_task != task
        and (topic, other_topic) not in ADJACENT and (other_topic, topic) not in ADJACENT
    )
    return rng.sample(candidates, n)


# Synthetic vector similarity per kind: mean and spread of a normal
# distribution. Shared words fool an embedding model, so near misses score
# almost like related work, and the kinds overlap.
VECTOR = {
    "related": (0.77, 0.075),
    "paraphrase": (0.70, 0.075),
    "near_miss": (0.65, 0.075),
    "unrelated": (0.37, 0.11),
}
LABEL = {"related": 1, "paraphrase": 1, "near_miss": 0, "unrelated": 0}


def vector(rng, kind):
    mean, sd = VECTOR[kind]
    return round(min(1.0, max(0.0, rng.gauss(mean, sd))), 3)


def main():
    rng = random.Random(SEED)
    pairs = []  # (task, pattern, kind, topic)
    for i, (topic, task, kind) in enumerate(BLOCK_TASKS):
        for j, pattern in enumerate(BLOCK_PATTERNS):
            pairs.append((task, pattern, kind if i == j else "unrelated", topic))
    pool = [(topic, task, text)
            for topic, task, related, paraphrases, _ in TASKS
            for text in related + paraphrases]
    for topic, task, related, paraphrases, near_misses in TASKS:
        rows = [(p, "related") for p in related]
        rows += [(p, "paraphrase") for p in paraphrases]
        rows += [(p, "near_miss") for p in near_misses]
        rows += [(p, "unrelated") for p in pick_unrelated(rng, topic, task, pool)]
        for pattern, kind in rows:
            pairs.append((task, pattern, kind, topic))

    seen = set()
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pairs.jsonl")
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        for task, pattern, kind, topic in pairs:
            if (task, pattern) in seen:
                raise SystemExit(f"duplicate pair: {task!r} / {pattern!r}")
            seen.add((task, pattern))
            row = {
                "task": task,
                "pattern": pattern,
                "vector_similarity": vector(rng, kind),
                "label": LABEL[kind],
                "kind": kind,
                "topic": topic,
            }
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(pairs)} pairs to {out}")


if __name__ == "__main__":
    main()
