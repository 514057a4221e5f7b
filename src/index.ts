import { app } from "./app";

export { ConversationGeneration } from "./generation/conversation-generation";

export default app;
