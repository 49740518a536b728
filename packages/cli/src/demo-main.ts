#!/usr/bin/env node
import { runDemo } from './demo.js';

runDemo();
