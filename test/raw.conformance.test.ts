import { rawFactory } from './conformance/factories.js';
import { conformanceSuite } from './conformance/suite.js';

conformanceSuite('raw server', rawFactory, { mount: '' });
conformanceSuite('raw server', rawFactory, { mount: '/mnt' });
