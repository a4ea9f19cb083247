// The columns of a message the application reads: everything but the search vector, which
// only the index needs (it is as large as the text, and was parsed on every page otherwise).
import { getTableColumns } from 'drizzle-orm';
import { messages } from '../db/schema.js';

const { searchVector: _indexOnly, ...readable } = getTableColumns(messages);

export const messageColumns = readable;
