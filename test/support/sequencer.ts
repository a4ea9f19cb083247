// The order test files start in. Vitest's own queues a group's projects by name (browser, cluster,
// process), which starts the longest real-process files last and leaves workers idle at the end;
// here a group's projects start in the order below, each project's files as Vitest orders them
// (failed first, then longest or largest first).
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** Within one groupOrder: projects whose files run longest first. */
const PROJECT_ORDER = ['pglite', 'postgres', 'redis', 'start', 'process', 'browser', 'cluster'];

const rank = (spec: TestSpecification) => {
  const index = PROJECT_ORDER.indexOf(spec.project.name);
  return index === -1 ? PROJECT_ORDER.length : index;
};

export class LongestFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    // Array.prototype.sort is stable: within a project Vitest's order stays.
    return sorted.sort(
      (a, b) =>
        a.project.config.sequence.groupOrder - b.project.config.sequence.groupOrder ||
        rank(a) - rank(b),
    );
  }
}
