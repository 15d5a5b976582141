//! Meeting bots on [Coolify](https://coolify.io): a warm pool of slot
//! applications, one bot per slot at a time.
//!
//! A Coolify application whose image is already on the server restarts in
//! seconds; a fresh one takes minutes. So bots are not given applications of
//! their own: the platform keeps a pool of *slot* applications per meeting
//! platform (each meeting platform has its own bot image) and recycles them.
//!
//! # How a bot runs
//!
//! - **Deploy** claims an idle slot of the bot's meeting platform through the
//!   core [`SlotStore`](platform_core::SlotStore) (atomic; a repeated deploy
//!   of the same bot gets the slot it already holds), writes the bot's
//!   environment from [`platform_core::bot_environment`] into the slot with
//!   one bulk upsert (secret values marked shown-once, every value literal;
//!   a variable this bot does not get, such as `MEETING_PASSWORD`, is
//!   deleted so the previous bot's value cannot linger), and starts it,
//!   which queues a Coolify deployment.
//! - When no slot is idle and the pool holds fewer slots of that meeting
//!   platform than `COOLIFY_POOL_MAX_<PLATFORM>`, a new slot application is
//!   created from `COOLIFY_BOT_IMAGE_<PLATFORM>`. When the pool is full the
//!   deploy fails with the retryable
//!   [`Error::PoolExhausted`](platform_core::Error::PoolExhausted).
//! - **Stop** asks Coolify to stop the application (keeping the image cached).
//!   **Cleanup** stops it if that was not done, deletes `MEETING_URL` and
//!   `MEETING_PASSWORD` from its environment, and returns the slot to the
//!   pool. A slot waiting in the pool thus holds no way into a past meeting
//!   (and a redeploy clicked in Coolify cannot send a bot back into one);
//!   if the delete fails, cleanup fails and the slot stays with the bot
//!   until a later cleanup succeeds. A deploy that wrote the environment but started nothing
//!   clears it the same way (one attempt) before giving the slot back, and
//!   recovering a failed slot clears it too. These deletes reach Coolify's
//!   database only: the runtime `.env` a deployment wrote on the server
//!   stays until the slot's next deployment rewrites it.
//! - **Status** reads the application's `state:health` string; while the
//!   application is down after a start, its deployment tells whether the bot
//!   is still starting, failed to start (the slot is then marked failed and
//!   not handed out until recovered), or ran and exited. Statuses of many
//!   bots come from one `GET /applications` call.
//!
//! # Identifiers
//!
//! A bot's platform identifier is its *claim*: `<application uuid>/bot-<bot
//! id>` (see [`SlotClaim`]). It is current only while the slot store says
//! that bot holds that slot; an identifier whose claim has ended reads as
//! `stopped`, and stopping or cleaning it up does nothing, so it can never
//! stop, report or release the bot that uses the slot now. The claim names
//! the bot, not the attempt: the deployment service cleans an attempt up
//! before it starts the next one.
//!
//! # Installations
//!
//! Every database has an installation id
//! ([`PlatformContext::installation`](platform_core::PlatformContext)), and
//! the pool's slot applications carry it in their names, so several
//! installations (a staging and a production service, a database that was
//! reset) can share one Coolify project: each adopts, claims, stops, lists
//! and frees only its own slots. A claim needs no installation of its own:
//! it names an application whose name carries the installation, and it is
//! only ever read against this installation's slot store.
//!
//! [`list_marked_bots`](platform_core::PlatformService::list_marked_bots)
//! lists every slot of this installation that a bot holds, by the store's
//! claims, for the service's orphan sweep; the claim it returns is the
//! identifier `stop_bot` and `cleanup` take, so a sweep that frees a slot
//! never touches a later claim of it.
//!
//! # Slot applications
//!
//! Slots are applications of the `COOLIFY_PROJECT_UUID` project named
//! `meeboter-slot-<installation id>-<zoom|teams|meet>-<number>`
//! ([`SlotName`]), e.g. `meeboter-slot-5f3a9c01d2e4b687-zoom-007`. At
//! start-up the platform lists the applications once and adopts every slot
//! application of this installation in the project into the store (adding
//! is idempotent, so nothing is duplicated); idle slots whose application is
//! gone from the project, or named for another installation, are dropped
//! from the store. If that list fails, construction fails with a retryable
//! error and the store is left untouched: an API error is never read as "no
//! applications". An operator can pre-create slots by hand under the same
//! names.
//!
//! Slots named before names carried the installation
//! (`meeboter-slot-zoom-007`) belong to no installation by their name. One
//! that this installation's store already holds (the database ran the
//! earlier version) is provably this installation's: it stays in use and is
//! renamed to carry the installation at start-up, once no bot holds it. Any
//! other is left alone, never adopted: a warning at start-up and `doctor`
//! name it, and an operator hands it to an installation by renaming it in
//! Coolify (or deletes it).
//!
//! New slots are created one at a time per meeting platform within a
//! process, so concurrent deploys cannot take the pool past its maximum.
//! Before creating, the platform lists the applications again and adopts a
//! slot application of this installation it does not know yet (left behind
//! by a crash between creating and recording it) instead of creating
//! another; a create whose answer was lost is reconciled the same way, never
//! sent twice. Several service processes sharing one store each serialise
//! only their own creations: two of them growing the same meeting platform
//! at the same moment can each create one slot, so the pool may end one slot
//! per extra process above its maximum (and two applications may share a
//! number).
//!
//! A creation counts only when it yields a new slot: an application uuid the
//! pool does not hold and Coolify did not list before, which Coolify then
//! lists under the name it was given. Any other answer fails the deploy at
//! once with a reason quoting what Coolify answered, and nothing more is
//! created for it. Behind that check, one deploy creates at most two slot
//! applications, and the process at most `COOLIFY_POOL_CREATIONS_PER_MINUTE`
//! in any minute (a deploy past either bound fails with a retryable
//! capacity error that started nothing).
//!
//! # Talking to Coolify
//!
//! Every call carries the token as a bearer header and
//! `Accept: application/json` (`/version`, which Coolify answers in text,
//! also accepts `text/html`), does not follow redirects (Coolify's API never
//! redirects; a redirect means the URL points elsewhere), and is paced
//! client-side by a token bucket (`COOLIFY_API_REQUESTS_PER_MINUTE`, default
//! 180 against Coolify's default limit of 200 per user) that slows down when
//! `X-RateLimit-Remaining` runs low and holds every call for a 429's
//! `Retry-After`. Reads, stops and env upserts are retried under a
//! [`RetryPolicy`](platform_core::RetryPolicy); creating and starting are
//! re-sent only when the server certainly did not act (a 429, or no
//! connection). HTTP errors keep the server's message, on one line and cut
//! to a few hundred characters (an HTML error page is reduced to its status
//! line; the raw answer goes to the debug log without the token): 401/403
//! are `Unauthorized`, 404 `NotFound`, 400/409/422 `Rejected`, 429
//! `Throttled` with its `Retry-After`, 5xx and a connection that broke after
//! the request was sent `Unavailable`, no answer in time `Timeout`. A
//! connection that could not be made at all (refused, a name that does not
//! resolve, a failed TLS handshake) is `Unreachable`: nothing was sent, so
//! nothing was started. The API key never appears in an error, a log line or
//! a `Debug` output.
//!
//! # Setup checks
//!
//! [`check_setup`](platform_core::PlatformService::check_setup) (for
//! `doctor`) checks that the URL serves Coolify's API (an HTML page, another
//! web server's 404 or JSON that is not Coolify's is reported as such, never
//! as a missing project), that the project, environment and server exist
//! (naming the ones the token can see), and that each meeting platform has
//! an image or existing slots. Construction reports a URL that is not
//! Coolify's API the same way.
//!
//! # Configuration
//!
//! See [`config`] for every variable ([`config::ENV_SPECS`]); they are also
//! listed in the generated `docs/ENVIRONMENT.md`. `DEPLOYMENT_PLATFORM=auto`
//! picks Coolify when `COOLIFY_API_URL` and `COOLIFY_API_KEY` are both set.

mod claim;
mod client;
pub mod config;
mod error;
mod growth;
mod ledger;
mod naming;
mod pacer;
mod pool;
mod retrying;
mod service;
mod setup;
mod status;
#[cfg(feature = "testkit")]
pub mod testkit;
mod wire;

use std::sync::Arc;

use platform_core::{AutoSelect, PlatformContext, PlatformDescriptor, PlatformService};

pub use claim::SlotClaim;
pub use config::{BotImage, CoolifyConfig, Pacing, PerMeetingPlatform};
pub use growth::MAX_CREATIONS_PER_DEPLOY;
pub use naming::{SLOT_NAME_PREFIX, SlotName};
pub use service::CoolifyPlatform;

/// The platform's registered name.
pub const PLATFORM: &str = "coolify";

/// The slot-store pool the platform keeps its slots in.
pub const POOL: &str = "coolify";

/// The Coolify platform, as the registry lists it.
pub const DESCRIPTOR: PlatformDescriptor = PlatformDescriptor {
    name: PLATFORM,
    description: "Coolify: a warm pool of pre-created Coolify applications, one bot per slot",
    feature: "coolify",
    env: config::ENV_SPECS,
    auto: AutoSelect::Detect {
        order: 10,
        markers: config::AUTO_MARKERS,
        ambient: &[],
    },
    build: |context: PlatformContext| {
        Box::pin(async move {
            let platform = CoolifyPlatform::from_context(context).await?;
            Ok(Arc::new(platform) as Arc<dyn PlatformService>)
        })
    },
};

platform_core::register_platform!(DESCRIPTOR);
