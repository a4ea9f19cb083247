// The tiny real model the local-provider tests run: ../shared/models/stories260K.gguf beside
// the repository. A clone without ../shared still passes: those tests skip and name the file.
import { existsSync } from 'node:fs';
import path from 'node:path';

export const TEST_MODEL_PATH = path.resolve(
  import.meta.dirname,
  '../../../shared/models/stories260K.gguf',
);

export const haveTestModel = existsSync(TEST_MODEL_PATH);

/** Appended to the title of a test that needs the model, so a skip says what was missing. */
export const skipNote = haveTestModel
  ? ''
  : ` (SKIPPED: the test model ../shared/models/stories260K.gguf is missing: ${TEST_MODEL_PATH})`;

// The default reporter folds a skipped file into one line without test titles: say it here too,
// once per file that needs the model (vitest prints it under that file's name).
if (!haveTestModel) {
  console.warn(
    `[parley] ${TEST_MODEL_PATH} not found: the tests that run the real test model are SKIPPED`,
  );
}
