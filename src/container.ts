// Builds the object graph once: configuration, database, infrastructure, services. The HTTP app,
// the server and the tests all start from a Container, so each wiring decision lives here.
import type { GenerationLog } from './ai/generation-log.js';
import type { AiProvider } from './ai/provider.js';
import { createProvider } from './ai/providers/index.js';
import { FairScheduler } from './ai/scheduler.js';
import type { Config } from './config/env.js';
import type { Database } from './db/client.js';
import type { EventBus } from './events/event-bus.js';
import type { Cache } from './infra/cache.js';
import { createMetrics, type Metrics } from './infra/metrics.js';
import { createLimiter, type Limiter, type RateLimiterStore } from './infra/rate-limiter.js';
import type { RedisClients } from './infra/redis.js';
import type { ReadinessCheck } from './infra/readiness.js';
import { AccountRepository } from './repositories/account.repository.js';
import { AttachmentRepository } from './repositories/attachment.repository.js';
import { ConversationRepository } from './repositories/conversation.repository.js';
import { GenerationRepository } from './repositories/generation.repository.js';
import { MessageRepository } from './repositories/message.repository.js';
import { ParticipantRepository } from './repositories/participant.repository.js';
import { ReactionRepository } from './repositories/reaction.repository.js';
import { SearchRepository } from './repositories/search.repository.js';
import { SessionRepository } from './repositories/session.repository.js';
import { UserRepository } from './repositories/user.repository.js';
import { VersionRepository } from './repositories/version.repository.js';
import { AccountDeletion } from './services/account-deletion.js';
import { AccountExport } from './services/account-export.js';
import { AccountService } from './services/account.service.js';
import { AiPolicy } from './services/ai-policy.js';
import { AttachmentService } from './services/attachment.service.js';
import { AttachmentCleanup } from './services/attachment-cleanup.js';
import { AuthService, type LoginLimiters } from './services/auth.service.js';
import { ConversationService } from './services/conversation.service.js';
import { GenerationService } from './services/generation.service.js';
import { MembershipService } from './services/membership.service.js';
import { MessageService } from './services/message.service.js';
import { ParticipantService } from './services/participant.service.js';
import { PresenceService } from './services/presence.service.js';
import { ReactionService } from './services/reaction.service.js';
import { SearchService } from './services/search.service.js';
import { SessionService } from './services/session.service.js';
import { TokenService } from './services/token.service.js';
import { UploadService } from './services/upload.service.js';
import { createStorage } from './storage/index.js';
import type { FileStorage } from './storage/storage.js';
import { VersionsService } from './services/versions.service.js';
import { MessageViews } from './services/views.js';
import { createLogger, describeError, type Logger } from './utils/logger.js';
import { createPasswordHasher } from './utils/password.js';
import { createKeyedSemaphore } from './utils/semaphore.js';
import { AnswerAttachments } from './services/answer-attachments.js';
import { AnswerJobs } from './services/answer-jobs.js';
import { startLeaseSweeper } from './services/lease-sweeper.js';
import { createSharedParts, type SharedParts } from './scale-out.js';

export interface Container {
  config: Config;
  logger: Logger;
  database: Database;
  events: EventBus;
  cache: Cache;
  metrics: Metrics;
  tokens: TokenService;
  sessions: SessionService;
  auth: AuthService;
  accounts: AccountService;
  accountDeletion: AccountDeletion;
  accountExport: AccountExport;
  conversations: ConversationService;
  participants: ParticipantService;
  messages: MessageService;
  versions: VersionsService;
  reactions: ReactionService;
  search: SearchService;
  membership: MembershipService;
  presence: PresenceService;
  generations: GenerationService;
  generationLog: GenerationLog;
  provider: AiProvider | undefined;
  limits: {
    register: Limiter;
    login: LoginLimiters;
    messages: Limiter;
    search: Limiter;
    uploads: Limiter;
    lookup: Limiter;
  };
  storage: FileStorage;
  uploads: UploadService;
  attachments: AttachmentService;
  attachmentCleanup: AttachmentCleanup;
  readinessChecks: ReadinessCheck[];
  /** This process, unique in the cluster. */
  instanceId: string;
  /** With REDIS_URL: the shared connections (the Socket.IO adapter uses them too). */
  redis: RedisClients | undefined;
  /** With REDIS_URL and AI on: runs queued answers (a worker, or an API with WORKERS_INLINE). */
  answerJobs: AnswerJobs | undefined;
  /** Connects to what is shared (Redis) and starts the background duties; call before serving. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export interface ContainerOptions {
  logger?: Logger;
  rateLimiterStore?: RateLimiterStore;
  /** Overrides the configured AI provider (tests); null for none. */
  provider?: AiProvider | null;
  /** Overrides the configured file storage (tests). */
  storage?: FileStorage;
}

export function createContainer(
  config: Config,
  database: Database,
  options: ContainerOptions = {},
): Container {
  const logger =
    options.logger ??
    createLogger({ level: config.LOG_LEVEL, json: config.NODE_ENV === 'production' });
  const metrics = createMetrics({ collectDefault: config.COLLECT_DEFAULT_METRICS });
  const shared: SharedParts = createSharedParts(config, metrics, logger);
  const { events, cache, redis } = shared;
  const store = options.rateLimiterStore ?? shared.rateLimiterStore;

  const limits = {
    register: createLimiter(store, {
      name: 'register:ip',
      points: config.REGISTER_MAX_PER_IP,
      windowMs: config.REGISTER_WINDOW,
    }),
    login: {
      perEmailIp: createLimiter(store, {
        name: 'login-failures:email-ip',
        points: config.LOGIN_MAX_FAILURES_PER_EMAIL_IP,
        windowMs: config.LOGIN_FAILURE_WINDOW,
      }),
      perIp: createLimiter(store, {
        name: 'login-failures:ip',
        points: config.LOGIN_MAX_FAILURES_PER_IP,
        windowMs: config.LOGIN_FAILURE_WINDOW,
      }),
    },
    messages: createLimiter(store, {
      name: 'messages:user',
      points: config.MESSAGE_RATE_LIMIT,
      windowMs: config.MESSAGE_RATE_WINDOW,
    }),
    search: createLimiter(store, {
      name: 'search:user',
      points: config.SEARCH_RATE_LIMIT,
      windowMs: config.SEARCH_RATE_WINDOW,
    }),
    uploads: createLimiter(store, {
      name: 'uploads:user',
      points: config.UPLOAD_RATE_LIMIT,
      windowMs: config.UPLOAD_RATE_WINDOW,
    }),
    lookup: createLimiter(store, {
      name: 'lookup:user',
      points: config.LOOKUP_RATE_LIMIT,
      windowMs: config.LOOKUP_RATE_WINDOW,
    }),
  };
  const storage = options.storage ?? createStorage(config);

  const users = new UserRepository(database.db);
  const sessionRepository = new SessionRepository(database.db);
  const tokens = new TokenService(config.JWT_SECRET, config.JWT_ACCESS_TTL);
  const sessions = new SessionService(sessionRepository, cache, events, config.JWT_ACCESS_TTL);
  const passwords = createPasswordHasher({
    memoryKib: config.ARGON2_MEMORY_KIB,
    timeCost: config.ARGON2_TIME_COST,
    concurrency: config.ARGON2_CONCURRENCY,
  });
  const auth = new AuthService(
    users,
    sessionRepository,
    sessions,
    tokens,
    passwords,
    limits.login,
    config.JWT_REFRESH_TTL,
  );

  const conversationRepository = new ConversationRepository(database.db);
  const participantRepository = new ParticipantRepository(database.db);
  const messageRepository = new MessageRepository(database.db);
  const reactionRepository = new ReactionRepository(database.db);
  const attachmentRepository = new AttachmentRepository(database.db);
  const versionRepository = new VersionRepository(database.db);
  const views = new MessageViews(
    users,
    reactionRepository,
    attachmentRepository,
    versionRepository,
  );
  const membership = new MembershipService(
    conversationRepository,
    participantRepository,
    cache,
    events,
  );

  const provider =
    options.provider === undefined
      ? createProvider(config, (level, message) => logger[level](message))
      : (options.provider ?? undefined);
  const generationLog = shared.generationLog;
  const queue = provider ? shared.queue : undefined;
  const aiPolicy = new AiPolicy({
    defaultModel: provider?.defaultModel() ?? config.AI_MODEL,
    models: config.AI_MODELS,
    maxOutputTokens: config.AI_MAX_OUTPUT_TOKENS,
    maxPendingPerUser: config.AI_MAX_PENDING_PER_USER,
  });
  const scheduler = new FairScheduler({
    concurrency:
      config.AI_CONCURRENCY ?? (config.AI_PROVIDER === 'local' ? config.AI_LOCAL_PARALLEL : 32),
    maxPendingPerUser: config.AI_MAX_PENDING_PER_USER,
  });
  const generationRepository = new GenerationRepository(database.db);
  // Answers read their messages' files from the same storage, in this process or in a worker.
  const answerFiles = new AnswerAttachments(attachmentRepository, storage, logger);
  const generations = new GenerationService({
    provider,
    generations: generationRepository,
    messages: messageRepository,
    conversations: conversationRepository,
    log: generationLog,
    stops: shared.stops,
    queue,
    scheduler,
    policy: aiPolicy,
    files: answerFiles,
    events,
    metrics,
    logger,
    titles: config.AI_TITLES,
  });
  const leaseMs = config.GENERATION_LEASE;
  const answerJobs =
    provider && queue
      ? new AnswerJobs({
          provider,
          generations: generationRepository,
          messages: messageRepository,
          log: generationLog,
          stops: shared.stops,
          cap: queue.cap,
          runner: generations.answerRunner,
          policy: aiPolicy,
          files: answerFiles,
          logger,
          owner: shared.instanceId,
          leaseMs,
        })
      : undefined;
  let stopSweeper: (() => void) | undefined;
  const attachmentCleanup = new AttachmentCleanup(attachmentRepository, storage, logger, {
    unattachedTtlMs: config.UPLOAD_UNATTACHED_TTL,
  });
  let stopCleanup: (() => Promise<void>) | undefined;

  const messages = new MessageService(
    conversationRepository,
    messageRepository,
    views,
    events,
    limits.messages,
    attachmentRepository,
    generations,
  );
  const participants = new ParticipantService(
    conversationRepository,
    participantRepository,
    messageRepository,
    events,
  );
  const accountDeletion = new AccountDeletion({
    users,
    accounts: new AccountRepository(database.db),
    participantRows: participantRepository,
    participants,
    sessions,
    auth,
    storage,
    logger,
  });
  const accountExport = new AccountExport({
    users,
    sessions,
    conversations: conversationRepository,
    participants: participantRepository,
    messages: messageRepository,
    attachments: attachmentRepository,
    views,
    slots: createKeyedSemaphore(1),
  });

  const presence = new PresenceService(shared.presenceStore, users, (error, userId) =>
    logger.warn('Presence: lastActiveAt not recorded', { userId, ...describeError(error) }),
  );
  return {
    generations,
    generationLog,
    provider,
    membership,
    presence,
    conversations: new ConversationService(
      conversationRepository,
      participantRepository,
      users,
      events,
      aiPolicy,
      presence,
    ),
    participants,
    messages,
    versions: new VersionsService(
      conversationRepository,
      messageRepository,
      messages,
      generations,
      limits.messages,
      versionRepository,
      events,
    ),
    reactions: new ReactionService(messageRepository, reactionRepository, events),
    search: new SearchService(
      conversationRepository,
      new SearchRepository(database, config.SEARCH_STATEMENT_TIMEOUT),
      views,
      createKeyedSemaphore(config.SEARCH_CONCURRENCY_PER_USER),
    ),
    config,
    logger,
    database,
    events,
    cache,
    metrics,
    tokens,
    sessions,
    auth,
    accounts: new AccountService(users, auth, sessions, passwords),
    accountDeletion,
    accountExport,
    limits,
    storage,
    uploads: new UploadService(attachmentRepository, storage, config.UPLOAD_MAX_BYTES),
    attachments: new AttachmentService(
      attachmentRepository,
      membership,
      storage,
      Math.ceil(config.UPLOAD_URL_TTL / 1000),
    ),
    attachmentCleanup,
    instanceId: shared.instanceId,
    redis: shared.redis,
    answerJobs,
    readinessChecks: [
      { name: 'database', check: () => database.ping() },
      { name: `storage (${storage.kind})`, check: () => storage.check() },
      ...(redis ? [{ name: 'redis', check: () => redis.ping() }] : []),
      ...(provider ? [{ name: `model (${provider.name})`, check: () => provider.check() }] : []),
    ],
    start: async () => {
      await shared.start();
      stopCleanup = shared.scheduleCleanup(
        () => attachmentCleanup.sweep(),
        config.UPLOAD_CLEANUP_INTERVAL,
      );
      // With Redis, answers are leased: every process fails those whose lease expired.
      if (queue)
        stopSweeper = startLeaseSweeper({
          generations: generationRepository,
          log: generationLog,
          cap: queue.cap,
          logger,
          intervalMs: Math.max(250, leaseMs / 3),
        });
    },
    close: async () => {
      stopSweeper?.();
      await stopCleanup?.();
      await Promise.all([generations.drain(5_000), answerJobs?.drain(5_000)]);
      await provider?.close();
      await storage.close();
      await shared.close();
      await database.close();
    },
  };
}
