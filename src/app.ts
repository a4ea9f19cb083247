// createApp(container): the Express app with every route, no listen (tests use it directly).
import cors from 'cors';
import express, { type Express, type Router } from 'express';
import helmet from 'helmet';
import type { Container } from './container.js';
import { readFileSync } from 'node:fs';
import { AccountController } from './controllers/account.controller.js';
import { fileURLToPath } from 'node:url';
import { AttachmentController } from './controllers/attachment.controller.js';
import { AuthController } from './controllers/auth.controller.js';
import { ChatController } from './controllers/chat.controller.js';
import { ConversationController } from './controllers/conversation.controller.js';
import { GenerationController } from './controllers/generation.controller.js';
import { OpsController } from './controllers/ops.controller.js';
import { UserController } from './controllers/user.controller.js';
import { createAuthMiddleware } from './middleware/auth.middleware.js';
import { errorHandler, notFoundHandler } from './middleware/error.middleware.js';
import { observeRequests } from './middleware/observe.middleware.js';
import { assignRequestId, markRouterBase } from './middleware/request-context.middleware.js';
import { rejectPrototypeKeys } from './middleware/json.middleware.js';
import { buildOpenApiDocument } from './openapi/document.js';
import { attachmentRoutes } from './routes/attachment.routes.js';
import { authRoutes } from './routes/auth.routes.js';
import { chatRoutes } from './routes/chat.routes.js';
import { conversationRoutes } from './routes/conversation.routes.js';
import { docsRoutes } from './routes/docs.routes.js';
import { opsRoutes } from './routes/ops.routes.js';
import { userRoutes } from './routes/user.routes.js';
import { webRoutes } from './routes/web.routes.js';

const { version } = JSON.parse(
  readFileSync(new URL('../package.json', import.meta.url), 'utf8'),
) as { version: string };

export function createApp(container: Container): Express {
  const { config, logger } = container;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.TRUST_PROXY);
  app.set('query parser', 'simple');

  app.use(assignRequestId);
  app.use(observeRequests(container.metrics, logger));
  app.use(helmet());
  app.use(cors({ origin: config.FRONTEND_URL, credentials: true, maxAge: 600 }));
  app.use(express.json({ limit: config.BODY_LIMIT, reviver: rejectPrototypeKeys }));

  const mount = (path: string, router: Router) => app.use(path, markRouterBase, router);

  const authMiddleware = createAuthMiddleware(container);
  mount(
    '/',
    opsRoutes(
      new OpsController(container.readinessChecks, container.metrics, config.METRICS_TOKEN, logger),
    ),
  );
  mount(
    '/api/auth',
    authRoutes(
      new AuthController(container.auth, container.sessions),
      new AccountController(container.accounts, container.accountDeletion, container.accountExport),
      authMiddleware,
      container.limits,
    ),
  );
  mount(
    '/api/users',
    userRoutes(
      new UserController(container.accounts),
      authMiddleware.requireAuth,
      container.limits,
    ),
  );

  mount(
    '/api/conversations',
    conversationRoutes(
      new ConversationController(container.conversations, container.participants),
      authMiddleware.requireAuth,
    ),
  );
  mount(
    '/api/chat',
    chatRoutes(
      new ChatController(
        container.messages,
        container.reactions,
        container.participants,
        container.search,
        container.generations,
        container.versions,
      ),
      new GenerationController(container.generations),
      authMiddleware.requireAuth,
      container.limits,
    ),
  );
  mount(
    '/api/attachments',
    attachmentRoutes(
      new AttachmentController(container.uploads, container.attachments, config.UPLOAD_MAX_BYTES),
      authMiddleware.requireAuth,
      container.limits,
    ),
  );
  // Built on first request, from the finished router.
  let openapi: object | undefined;
  mount(
    '/',
    docsRoutes(() => (openapi ??= buildOpenApiDocument(app, version))),
  );

  // Last: the web client's files cannot shadow an API route.
  const web = webRoutes(
    config.WEB_DIR ?? fileURLToPath(new URL('../dist/web', import.meta.url)),
    config,
  );
  if (web) app.use(web);

  app.use(notFoundHandler);
  app.use(errorHandler(logger));
  return app;
}
