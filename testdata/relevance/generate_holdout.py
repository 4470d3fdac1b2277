#!/usr/bin/env python3
"""Writes holdout.jsonl: a held-out labelled relevance set.

Written independently of internal/analyzer (its lexicon was never read while
writing these texts) and never used to tune it. Standard library only; the
same bytes on every run:

    python3 testdata/relevance/generate_holdout.py
"""
import json
import os
import random

SEED = 20240712

# kind -> (label, mean, standard deviation) of the synthetic vector similarity.
# Imitates a decent embedding model that shared words fool: near misses score
# about as high as paraphrases.
KINDS = {
    "related": (1, 0.76, 0.08),
    "paraphrase": (1, 0.64, 0.09),
    "near_miss": (0, 0.66, 0.08),
    "unrelated": (0, 0.34, 0.11),
}

# Each task: text, topic, complexity, feature_label, and its patterns by kind.
TASKS = [
    {
        "task": "a11y: checkout form fields missing labels, screen reader just says 'edit text'",
        "topic": "accessibility", "complexity": "simple", "feature_label": "checkout",
        "related": [
            "Add aria-labels and associated <label> elements to the signup form inputs",
            "Fix accessibility audit findings on the payment page (missing labels, low contrast)",
        ],
        "paraphrase": [
            "Make the purchase flow usable with VoiceOver and NVDA",
            "WCAG 2.1 AA remediation for the order entry screens",
        ],
        "near_miss": [
            "Add a promo code field to the checkout form",
            "Checkout form submits twice when the user double-clicks Pay",
        ],
        "unrelated": [
            "Rotate TLS certificates on the internal load balancer",
        ],
    },
    {
        "task": "As a customer in Germany I want the dates, prices and numbers on my invoices shown in my own locale format, so that I am not confused whether 03/04 means March or April.",
        "topic": "i18n", "complexity": "moderate", "feature_label": "billing",
        "related": [
            "Locale-aware formatting of currency and dates across the web app",
            "Use ICU message format for plurals and number formatting",
        ],
        "paraphrase": [
            "Render amounts like 1.234,56 \u20ac for de-DE users on PDF bills",
            "Respect the user's regional settings when displaying timestamps and money",
        ],
        "near_miss": [
            "Invoices for German customers must show the VAT ID and a reverse-charge note",
            "Fix invoice date off by one day for customers in UTC+ timezones",
        ],
        "unrelated": [
            "Set up nightly Postgres backups to object storage",
        ],
    },
    {
        "task": "Migrate user_profiles from Mongo to PG; dual-write + backfill, cutover w/ zero downtime",
        "topic": "data-migration", "complexity": "very_complex", "feature_label": "",
        "related": [
            "Backfill historical orders into the new schema and switch reads once row counts match",
            "Move the sessions collection from MongoDB to Postgres with a dual-write phase",
        ],
        "paraphrase": [
            "Port the profile store to the relational database without taking the site down",
            "Shift customer account records off the document DB onto SQL, verifying parity before flipping traffic",
        ],
        "near_miss": [
            "Add an index on user_profiles.email in Postgres",
            "Upgrade the MongoDB driver to 5.x",
        ],
        "unrelated": [
            "Add a dark mode toggle to the settings page",
            "Translate the help centre into Portuguese",
        ],
    },
    {
        "task": "gate new recomendations widget behind flag, 10% rollout",
        "topic": "feature-flags", "complexity": "simple", "feature_label": "recommendations",
        "related": [
            "Wrap the redesigned search bar in a feature toggle and enable it for internal users first",
            "Percentage rollout of the new pricing page via LaunchDarkly",
        ],
        "paraphrase": [
            "Ship the widget dark and turn it on gradually for a slice of users",
            "Canary-release the homepage carousel to a small cohort using a runtime switch",
        ],
        "near_miss": [
            "Improve relevance of the recommendations widget using purchase history",
            "Remove stale feature flags older than 90 days",
        ],
        "unrelated": [
            "Write a runbook for Kafka broker disk-full alerts",
        ],
    },
    {
        "task": "Product search returns nothing for partial words like 'headph' - add prefix/ngram matching to the Elasticsearch index",
        "topic": "search", "complexity": "moderate", "feature_label": "search",
        "related": [
            "Add an edge n-gram analyzer for autocomplete on product titles",
            "Support typo-tolerant fuzzy matching in catalog search",
        ],
        "paraphrase": [
            "Make the shop's lookup box find items as soon as you type the first few letters",
            "Search-as-you-type for the catalogue",
        ],
        "near_miss": [
            "Reindex the Elasticsearch cluster after upgrading to 8.x",
            "Dashboard of the top search queries that return zero results",
        ],
        "unrelated": [
            "Send password reset emails through SES",
        ],
    },
    {
        "task": "Our AWS bill jumped 40% last month. Investigate where the spend comes from, right-size the overprovisioned EC2 instances and move infrequently accessed S3 data to a cheaper storage class.",
        "topic": "cost-optimisation", "complexity": "complex", "feature_label": "",
        "related": [
            "Reduce cloud spend by switching batch workers to spot instances",
            "Add S3 lifecycle rules to transition old logs to Glacier",
        ],
        "paraphrase": [
            "Cut infrastructure costs: downsize idle VMs and archive cold blobs",
            "FinOps review of compute and storage usage, then act on the biggest savings",
        ],
        "near_miss": [
            "Migrate the EC2 instances into a new VPC",
            "Fix the S3 bucket policy that made uploads publicly readable",
        ],
        "unrelated": [
            "Translate the onboarding screens into Japanese",
            "Add a CSV export to the admin reports page",
        ],
    },
    {
        "task": "SEV2 postmortem: checkout 5xx spike 14:02-14:40, write RCA + action items",
        "topic": "incident-response", "complexity": "moderate", "feature_label": "",
        "related": [
            "Write the post-incident review for the login outage, with timeline and follow-ups",
            "Blameless retro for the payment gateway timeout incident",
        ],
        "paraphrase": [
            "Document what went wrong during yesterday's checkout failure and what we will change",
            "Root cause analysis of Tuesday's burst of API errors",
        ],
        "near_miss": [
            "Add a 5xx error-rate alert on the checkout service",
            "Fix checkout returning 500 when the cart is empty",
        ],
        "unrelated": [
            "Add drag-and-drop reordering to the playlist editor",
        ],
    },
    {
        "task": "Bump Spring Boot 2.7 -> 3.2 (jakarta namespace, Java 17)",
        "topic": "dependency-upgrade", "complexity": "complex", "feature_label": "",
        "related": [
            "Upgrade React 17 to 18 and fix the breaking changes in tests",
            "Move Django from 3.2 LTS to 4.2 LTS",
        ],
        "paraphrase": [
            "Bring the backend framework up to its current major version and switch javax imports to jakarta",
            "Update the outdated libraries that are flagged end-of-life",
        ],
        "near_miss": [
            "Add the Spring Boot actuator health endpoint",
            "Tune JVM heap settings for the Java 17 service",
        ],
        "unrelated": [
            "Design the onboarding email sequence for trial users",
        ],
    },
    {
        "task": "As the DPO I need the personal data of closed accounts deleted or anonymised 30 days after closure, with an audit trail, so that we comply with the GDPR storage limitation principle.",
        "topic": "privacy", "complexity": "complex", "feature_label": "privacy",
        "related": [
            "Implement right-to-erasure requests: purge a user's records across all services",
            "Scheduled job that anonymises PII in order history older than the retention period",
        ],
        "paraphrase": [
            "Automatically scrub customer information once we no longer need it and log each removal",
            "Enforce the data retention policy for inactive users",
        ],
        "near_miss": [
            "Let users close their account from the settings page",
            "Add an audit log of admin logins",
        ],
        "unrelated": [
            "Speed up the Docker image build with layer caching",
        ],
    },
    {
        "task": "k6 load test for /api/orders, target 500 rps p95<300ms",
        "topic": "load-testing", "complexity": "moderate", "feature_label": "",
        "related": [
            "Run Gatling performance tests against the booking API before launch",
            "Stress-test the payment service to find its saturation point",
        ],
        "paraphrase": [
            "Simulate peak traffic on the order endpoint and check latency stays within the SLO",
            "Benchmark throughput of the checkout backend with many concurrent users",
        ],
        "near_miss": [
            "Add a rate limit of 500 requests per minute to /api/orders",
            "Write unit tests for the orders API handlers",
        ],
        "unrelated": [
            "Add right-to-left layout support for Arabic",
        ],
    },
    {
        "task": "password reset mails landing in spam for gmail users, fix SPF/DKIM",
        "topic": "email-delivery", "complexity": "simple", "feature_label": "notifications",
        "related": [
            "Set up a DMARC policy and DKIM signing for the marketing domain",
            "Improve transactional email deliverability and handle bounces and complaints",
        ],
        "paraphrase": [
            "Mail providers flag our automated messages as junk; authenticate the sending domain",
            "Configure DNS records so that outgoing mail passes sender authentication",
        ],
        "near_miss": [
            "Redesign the password reset email template",
            "Add a spam filter to the contact form",
        ],
        "unrelated": [
            "Partition the events table by month",
            "Add keyboard navigation to the date picker",
        ],
    },
    {
        "task": "Allow users to upload profile pictures up to 10 MB, resize them to thumbnails and store them in S3",
        "topic": "file-uploads", "complexity": "moderate", "feature_label": "profiles",
        "related": [
            "Direct-to-S3 multipart uploads of large video files with presigned URLs",
            "Attachment upload for support tickets, with virus scanning",
        ],
        "paraphrase": [
            "Let members add an avatar image; generate small versions and keep the originals in object storage",
            "Image upload pipeline with server-side resizing",
        ],
        "near_miss": [
            "Show user profile pictures next to comments",
            "Let users download all their profile data as a zip file",
        ],
        "unrelated": [
            "Add OpenTelemetry tracing to the API gateway",
        ],
    },
    {
        "task": "Replace the 5-second polling on the operations dashboard with a WebSocket connection so that order status changes show up live, and reconnect with backoff whenever the connection drops.",
        "topic": "realtime", "complexity": "complex", "feature_label": "dashboard",
        "related": [
            "Push live chat messages to clients over WebSockets",
            "Server-sent events for real-time notification badge updates",
        ],
        "paraphrase": [
            "Make the order tracker update instantly instead of refreshing every few seconds",
            "Realtime updates via socket.io for the ops board",
        ],
        "near_miss": [
            "Add an order status filter to the dashboard",
            "Increase the dashboard polling interval to reduce server load",
        ],
        "unrelated": [
            "Add SAML single sign-on for enterprise customers",
        ],
    },
    {
        "task": "nightly cron that expires unpaid invoices runs twice on multi-node deploy -> make it run once (leader lock)",
        "topic": "scheduling", "complexity": "moderate", "feature_label": "billing",
        "related": [
            "Use a distributed lock so the report scheduler fires on only one instance",
            "Prevent duplicate execution of scheduled jobs across replicas",
        ],
        "paraphrase": [
            "Make sure the midnight batch happens on a single server of the cluster",
            "Singleton scheduled task guarded by a Redis mutex",
        ],
        "near_miss": [
            "Send a reminder email for invoices unpaid after 7 days",
            "Move the invoice expiry job's cron schedule from 2am to 4am",
        ],
        "unrelated": [
            "Add keyboard shortcuts to the markdown editor",
        ],
    },
    {
        "task": "App crashes on Android 14 when user taps 'Scan receipt' (camera permisson denied path)",
        "topic": "mobile", "complexity": "simple", "feature_label": "",
        "related": [
            "Handle a denied location permission gracefully on iOS instead of crashing",
            "Fix crash when a runtime permission is revoked while the app is in the background",
        ],
        "paraphrase": [
            "Scanning a receipt kills the app on newer Android phones if camera access was refused",
            "Graceful fallback when the user declines camera access",
        ],
        "near_miss": [
            "Add receipt scanning with the camera and OCR",
            "Raise the Android targetSdk to 34",
        ],
        "unrelated": [
            "Full-text search over help centre articles",
        ],
    },
    {
        "task": "structured JSON logs w/ request id propagated across svc boundaries",
        "topic": "observability", "complexity": "moderate", "feature_label": "",
        "related": [
            "Add correlation IDs to every log line and pass them on in HTTP headers",
            "Switch the logger to JSON output for ingestion into Loki",
        ],
        "paraphrase": [
            "Make it possible to follow a single request through every microservice in the logs",
            "Emit machine-parseable log events carrying a trace identifier",
        ],
        "near_miss": [
            "Validate JSON request bodies against a schema",
            "Reduce log volume by dropping debug logs in production",
        ],
        "unrelated": [
            "Add coupon codes at checkout",
        ],
    },
    {
        "task": "flaky e2e test 'checkout > apply coupon' fails ~1/10 on CI - quarantine it and fix the race",
        "topic": "ci", "complexity": "simple", "feature_label": "",
        "related": [
            "Stabilise intermittently failing Cypress tests caused by missing waits",
            "Investigate and fix the nondeterministic integration test in the payments suite",
        ],
        "paraphrase": [
            "A browser test sometimes passes and sometimes fails in the pipeline; find the timing issue",
            "Deflake the end-to-end suite",
        ],
        "near_miss": [
            "Reject expired codes when applying a coupon",
            "Speed up CI by running the e2e tests in parallel",
        ],
        "unrelated": [
            "Migrate DNS to a new provider",
            "Add a monthly usage chart to the billing page",
        ],
    },
    {
        "task": "Rotate the leaked Stripe API key found in a public repo, purge it from git history and add secret scanning so it can't happen again",
        "topic": "security", "complexity": "moderate", "feature_label": "",
        "related": [
            "Revoke and reissue the exposed AWS access keys and add pre-commit secret detection",
            "Respond to a credential leak: rotate tokens and audit their usage",
        ],
        "paraphrase": [
            "A payment provider secret got pushed to GitHub; replace it and stop this from recurring",
            "Swap out the compromised billing credential and scrub it from version control",
        ],
        "near_miss": [
            "Integrate the Stripe API for subscription payments",
            "Make the repo public on GitHub under an open-source license",
        ],
        "unrelated": [
            "Add pagination to the users list endpoint",
        ],
    },
    {
        "task": "Bulk import customers from CSV (~50k rows) w/ a per-row validation error report",
        "topic": "data-import", "complexity": "moderate", "feature_label": "admin",
        "related": [
            "Import products from an Excel spreadsheet with row-level validation",
            "Batch upload of contacts via CSV with duplicate detection",
        ],
        "paraphrase": [
            "Let admins load a big customer list from a spreadsheet file and see which lines were rejected and why",
            "Mass data ingest from flat files with an error report",
        ],
        "near_miss": [
            "Export customers to CSV",
            "Validate customer email addresses on the signup form",
        ],
        "unrelated": [
            "Set up blue-green deployments for the web tier",
        ],
    },
    {
        "task": "publish api reference docs (openapi) on the dev portal, autogenerated in CI on every merge",
        "topic": "docs", "complexity": "simple", "feature_label": "developer-portal",
        "related": [
            "Generate Swagger documentation for the REST endpoints",
            "Build the SDK reference docs automatically on every release",
        ],
        "paraphrase": [
            "Keep the public endpoint documentation in sync with the code without manual edits",
            "A developer site page describing every route, produced from code annotations",
        ],
        "near_miss": [
            "Add versioning to the public API (v1/v2)",
            "Write internal onboarding docs for new engineers",
        ],
        "unrelated": [
            "Add retries with backoff to the webhook sender",
        ],
    },
    {
        "task": "DR drill: restore last night's prod DB backup into an isolated env, measure how long it takes and document the RTO/RPO we can actually meet",
        "topic": "disaster-recovery", "complexity": "complex", "feature_label": "",
        "related": [
            "Run a failover drill to the secondary region and measure recovery time",
            "Verify backups are restorable by restoring them into a staging instance",
        ],
        "paraphrase": [
            "Prove we can really get the database back from snapshots and write down how long that takes",
            "Business continuity exercise for the primary datastore",
        ],
        "near_miss": [
            "Increase backup retention from 7 to 30 days",
            "Restore a deleted user account at the customer's request",
        ],
        "unrelated": [
            "Add tooltips to the chart legends",
        ],
    },
]

ORDER = ("related", "paraphrase", "near_miss", "unrelated")


def main():
    rng = random.Random(SEED)
    lines = []
    for t in TASKS:
        for kind in ORDER:
            label, mean, sd = KINDS[kind]
            for pattern in t[kind]:
                v = min(1.0, max(0.0, rng.gauss(mean, sd)))
                lines.append(json.dumps({
                    "task": t["task"],
                    "pattern": pattern,
                    "vector_similarity": round(v, 3),
                    "label": label,
                    "kind": kind,
                    "topic": t["topic"],
                    "complexity": t["complexity"],
                    "feature_label": t["feature_label"],
                }, ensure_ascii=False))
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "holdout.jsonl")
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
