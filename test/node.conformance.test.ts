import { nodeFactory } from './conformance/factories.js';
import { conformanceSuite } from './conformance/suite.js';

conformanceSuite('node:http', nodeFactory, { mount: '' });
conformanceSuite('node:http', nodeFactory, { mount: '/mnt' });
